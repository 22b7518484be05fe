/// <reference lib="dom" />
/**
 * The cabinet's service worker: it keeps the shell (the page, its script and style, the manifest and icons) so
 * the app opens offline and says so. It caches GET requests of the shell only, network first: never an API
 * answer (/v1/...), never a request body, so a card number typed into the connect form cannot end up here.
 */
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends Event {
  request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface WorkerScope {
  addEventListener(type: 'install' | 'activate', fn: (e: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', fn: (e: FetchEvent) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  registration: { scope: string };
}
const sw = self as unknown as WorkerScope;

const CACHE = 'rc-cabinet-shell-v1';
const SHELL = ['./', 'app.js', 'app.css', 'manifest.webmanifest', 'icon-192.png', 'icon-512.png'];

sw.addEventListener('install', (e) => {
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

/** A shell file of this app: same origin, under the worker's scope, not the API. */
function isShell(req: Request): boolean {
  if (req.method !== 'GET') return false;
  const url = new URL(req.url);
  return url.origin === location.origin && url.href.startsWith(sw.registration.scope) && !url.pathname.startsWith('/v1/');
}

sw.addEventListener('fetch', (e) => {
  if (!isShell(e.request)) return; // the browser fetches it as usual, nothing kept
  const req = e.request;
  // the page itself is kept under the scope's URL, whatever its query (?error=…) or hash
  const key = req.mode === 'navigate' ? new Request(sw.registration.scope) : req;
  e.respondWith(
    fetch(req)
      .then(async (res) => {
        if (res.ok) await (await caches.open(CACHE)).put(key, res.clone());
        return res;
      })
      .catch(async () => (await caches.match(key)) ?? new Response('offline', { status: 503, headers: { 'content-type': 'text/plain' } })),
  );
});
