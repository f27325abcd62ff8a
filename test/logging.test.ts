import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createPinoLogger } from '../src/http/logging.ts';

function collector() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('the log', () => {
  it('writes JSON lines with level and time, and redacts secret-bearing fields', () => {
    const { lines, stream } = collector();
    const log = createPinoLogger('info', stream);
    log({ level: 'warn', event: 'oops', password: 'hunter2hunter2', client_secret: 's3cr3t', request: { authorization: 'Bearer abc' }, clientId: 'app' });
    log({ level: 'debug', event: 'hidden' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', event: 'oops', password: '[redacted]', client_secret: '[redacted]', request: { authorization: '[redacted]' }, clientId: 'app' });
    expect(typeof lines[0]!.time).toBe('string');
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|s3cr3t|Bearer/);
  });

  it('writes the request line as built', () => {
    const { lines, stream } = collector();
    createPinoLogger('info', stream)({ level: 'info', event: 'request', requestId: 'r-12345678', method: 'POST', path: '/token', status: 200, ms: 1.5 });
    expect(lines).toEqual([expect.objectContaining({ level: 'info', event: 'request', requestId: 'r-12345678', method: 'POST', path: '/token', status: 200, ms: 1.5 })]);
  });
});
