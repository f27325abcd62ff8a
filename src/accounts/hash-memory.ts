import argon2 from 'argon2';

/**
 * Just under the largest block whose freeing still raises glibc's mmap threshold
 * (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB on 64-bit systems), in argon2's KiB: 8 KiB less, so that
 * the block with its header, rounded up to whole pages, stays within it.
 */
const LARGEST_KEPT_KIB = 32 * 1024 - 8;

let kept: Promise<void> | undefined;

/**
 * Lets glibc keep the memory of password hashes for the next ones, once per process (the
 * password hasher calls it before its second hash).
 *
 * A hash's memory (19 MiB by default) is above glibc's initial mmap threshold, so the first
 * hash is mapped apart; freeing it raises the threshold to its size and the heap's trim
 * threshold to twice that (mallopt(3), "dynamic mmap threshold"). From then on hashes come
 * from the heap, but two that finish together at its top make a free top of just about twice
 * a hash, and a few KiB of whatever else is free there decide whether glibc gives it back to
 * the kernel, and the next hashes fault every page in again. Under a hypervisor that nearly
 * quadrupled a verification's CPU in a process doing only hashes, and in a server it happened
 * nearly every time once other load had passed.
 * Freeing one mapped block just under 32 MiB first sets the thresholds to that and 64 MiB: the
 * memory of up to three default hashes at once is kept. It costs one hash of that size (about
 * 150 ms of CPU under a hypervisor, most of it faulting its pages in); elsewhere (musl, macOS,
 * or with the thresholds set in the environment) that is all it does.
 *
 * @param memoryKiB the hashes' memory; above the largest block glibc keeps, there is nothing to do.
 */
export function keepHashMemory(memoryKiB: number): Promise<void> {
  if (memoryKiB >= LARGEST_KEPT_KIB) return Promise.resolve();
  kept ??= argon2.hash('hash memory', { type: argon2.argon2id, memoryCost: LARGEST_KEPT_KIB, timeCost: 1, parallelism: 1 }).then(
    () => undefined,
    // Nothing depends on it but speed: a failure leaves glibc to its own thresholds.
    () => undefined,
  );
  return kept;
}
