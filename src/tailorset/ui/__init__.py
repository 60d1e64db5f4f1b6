"""The caption review workbench at /ui: an HTML shell and a few ES modules that call the JSON API."""
