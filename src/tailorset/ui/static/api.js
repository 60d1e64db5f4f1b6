// The JSON API under /tailored-gen, called with the token the user signed in with.
// Every failure becomes an ApiError carrying the API's own one-sentence `error`.

const TOKEN_KEY = "tailorset.token";

export const session = {
  // sessionStorage: the token lives as long as the tab, and never in a cookie the browser would send by itself.
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith("tailorset.")) sessionStorage.removeItem(key);
  },
};

/** Query parameters that make image bodies carry tailorset's own fields: the captioner's confidence and the review state. */
export const IMAGE_EXTRAS = Object.freeze({ include: "confidence,review" });

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};
/** Called when a signed-in call answers 401 (the token was revoked, say). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** One call. Resolves {data, headers}; rejects with an ApiError whose message is fit to show as is. */
export async function request(method, path, { body, query, token } = {}) {
  const url = new URL(`/tailored-gen${path}`, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = {};
  const credential = token ?? session.token;
  if (credential) headers.api_token = credential;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "The server could not be reached; check that it is running and try again.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message =
      data && typeof data.error === "string"
        ? data.error
        : `The server answered ${response.status} ${response.statusText} without saying why.`;
    const error = new ApiError(response.status, message);
    if (response.status === 401 && token === undefined) unauthorized(error);
    throw error;
  }
  return { data, headers: response.headers };
}

const call = (method) => async (path, body, query) => (await request(method, path, { body, query })).data;

export const api = {
  get: (path, query) => call("GET")(path, undefined, query),
  post: call("POST"),
  put: call("PUT"),
  del: call("DELETE"),
};
