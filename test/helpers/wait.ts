/** Polls until `done` holds, every 20 ms for at most `ms`; otherwise fails, naming what it waited for. */
export async function waitFor(done: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
