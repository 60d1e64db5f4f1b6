from tailorset.cli import main

raise SystemExit(main())
