/**
 * A tiny static server for the built site (site/dist), on 127.0.0.1 and a
 * free port. The PDF script prints from it and the browser tests load it.
 * It serves the site under the same base path it was built for (BASE_PATH),
 * answers 404 with dist/404.html, and sets the content types a browser
 * checks (module scripts, CSS, wasm for the search, application/pdf).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const siteDir = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const distDir = join(siteDir, 'dist');

/** The base path the site is built for, as Astro sees it: '' or '/name'. */
export function basePath(raw: string | undefined = process.env.BASE_PATH): string {
  const trimmed = (raw ?? '').trim().replace(/^\/+|\/+$/g, '');
  return trimmed ? `/${trimmed}` : '';
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
};

export interface DistServer {
  /** `http://127.0.0.1:<port><base>/` */
  url: string;
  origin: string;
  base: string;
  close(): Promise<void>;
}

export function contentType(file: string): string {
  return TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** Resolves a URL path to a file in dist, or undefined. */
function fileFor(dir: string, base: string, pathname: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (base) {
    if (path === base) path = '/';
    else if (path.startsWith(`${base}/`)) path = path.slice(base.length);
    else return undefined;
  }
  const full = normalize(join(dir, path));
  if (full !== dir && !full.startsWith(dir + sep)) return undefined;
  if (existsSync(full) && statSync(full).isFile()) return full;
  const index = join(full, 'index.html');
  if (existsSync(index)) return index;
  return undefined;
}

export async function serveDist(options: { dir?: string; base?: string; port?: number } = {}): Promise<DistServer> {
  const dir = resolve(options.dir ?? distDir);
  const base = options.base ?? basePath();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // Directory pages are linked with a trailing slash; redirect like a static host would.
    if (!url.pathname.endsWith('/') && !extname(url.pathname)) {
      const file = fileFor(dir, base, url.pathname);
      if (file?.endsWith(`${sep}index.html`)) {
        res.writeHead(301, { location: `${url.pathname}/${url.search}` }).end();
        return;
      }
    }
    const file = fileFor(dir, base, url.pathname);
    const status = file ? 200 : 404;
    const body = file ?? join(dir, '404.html');
    if (!existsSync(body)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    res.writeHead(status, {
      'content-type': contentType(body),
      'content-length': statSync(body).size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(body).pipe(res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}${base}/`,
    origin,
    base,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
