import fs from 'node:fs';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/** Where the admin script reads and writes; tests pass their own streams and environment. */
export interface AdminIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
  env: Record<string, string | undefined>;
}

export class UsageError extends Error {}

export async function readAllStdin(io: AdminIo): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  // One trailing newline is what `echo` and here-strings add; it is not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks for a line on the terminal without echoing it. */
function askHidden(io: AdminIo, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: io.stdin, output: io.stderr, terminal: true });
    const output = io.stderr as Writable & { write: (s: string) => boolean };
    const rlWithOutput = rl as unknown as { _writeToOutput: (s: string) => void };
    let prompted = false;
    rlWithOutput._writeToOutput = (s: string) => {
      // Show the question once; swallow the echo of what is typed.
      if (!prompted) {
        output.write(s);
        prompted = true;
      }
    };
    rl.question(question, (answer) => {
      rl.close();
      output.write('\n');
      resolve(answer);
    });
    rl.on('SIGINT', () => {
      rl.close();
      reject(new UsageError('cancelled'));
    });
  });
}

/**
 * The password for a user: from standard input with --password-stdin (for scripts), otherwise
 * typed twice at a terminal prompt. It is never taken from an argument, where it would land in
 * shell history and the process list.
 */
export async function readNewPassword(io: AdminIo, fromStdin: boolean): Promise<string> {
  if (fromStdin) return readAllStdin(io);
  if (!io.stdin.isTTY) {
    throw new UsageError('no terminal to ask for the password: pass it on standard input with --password-stdin');
  }
  const first = await askHidden(io, 'Password: ');
  const second = await askHidden(io, 'Repeat password: ');
  if (first !== second) throw new UsageError('the two passwords differ');
  return first;
}

/** Reads a file named on the command line, with a readable error when it cannot be read. */
export function readFileArgument(option: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${option}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
