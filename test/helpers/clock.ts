import { vi } from 'vitest';

/**
 * Moves the clock of this process (where the test servers run) forward, so expiry and delays
 * can be tested without waiting. Only Date is faked: timers and I/O stay real. Undo with
 * vi.useRealTimers() after each test.
 */
export function advanceClock(seconds: number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now() + seconds * 1000);
}
