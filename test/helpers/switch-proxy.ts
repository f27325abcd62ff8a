import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SwitchProxy {
  /** The proxy's own URL: the issuer every instance shares. */
  url: string;
  /** Which backend the next requests go to. */
  use(index: number): void;
  /** How many requests each backend has served. */
  served: number[];
  close(): Promise<void>;
}

/**
 * A load balancer the test steers: it forwards every request to the backend chosen last, so a
 * test can start a flow on one instance and finish it on another. Loopback only.
 */
export async function startSwitchProxy(backends: () => string[]): Promise<SwitchProxy> {
  let current = 0;
  const served: number[] = [];
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? '/', backends()[current]);
    served[current] = (served[current] ?? 0) + 1;
    const upstream = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    use(index) {
      current = index;
    },
    served,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
