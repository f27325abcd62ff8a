import { describe, expect, it } from 'vitest';
import { withPlainEnglishLists } from '../src/oidc/english-lists.ts';

/** Intl's own list formatter, counting how many are built. */
function countingListFormat() {
  const counter = { built: 0 };
  const ListFormat = new Proxy(Intl.ListFormat, {
    construct(target, args: unknown[], newTarget) {
      counter.built++;
      return Reflect.construct(target, args, newTarget);
    },
  });
  return { ListFormat, counter };
}

const LISTS = [[], ["'a'"], ["'a'", "'b'"], ["'a'", "'b'", "'c'"], ['client_id', 'scope', 'state', 'nonce'], ['x, y', 'z', 'and', 'or', 'w']];

describe('English lists without ICU', () => {
  it.each(['conjunction', 'disjunction'] as const)('words %s lists as Intl does, without building its formatter', (type) => {
    const { ListFormat, counter } = countingListFormat();
    const Plain = withPlainEnglishLists(ListFormat);
    const plain = new Plain('en', { type });
    const icu = new Intl.ListFormat('en', { type });
    for (const list of LISTS) expect(plain.format(list)).toBe(icu.format(list));
    expect(plain.format(new Set(["'a'", "'b'"]))).toBe(icu.format(["'a'", "'b'"]));
    expect(plain.format('abc')).toBe(icu.format('abc'));
    expect(plain.format(undefined as unknown as string[])).toBe(icu.format(undefined as unknown as string[]));
    expect(counter.built).toBe(0);
    expect(plain).toBeInstanceOf(Intl.ListFormat);
    expect(plain.constructor).toBe(Plain);
  });

  it('leaves every other list formatter to Intl', () => {
    const { ListFormat, counter } = countingListFormat();
    const Plain = withPlainEnglishLists(ListFormat);
    expect(new Plain('de', { type: 'conjunction' }).format(['a', 'b'])).toBe('a und b');
    expect(new Plain('en', { type: 'unit' }).format(['a', 'b'])).toBe(new Intl.ListFormat('en', { type: 'unit' }).format(['a', 'b']));
    expect(new Plain('en', { type: 'conjunction', style: 'short' }).format(['a', 'b', 'c'])).toBe(new Intl.ListFormat('en', { type: 'conjunction', style: 'short' }).format(['a', 'b', 'c']));
    expect(new Plain('en').format(['a', 'b'])).toBe('a and b');
    expect(new Plain('en', Object.assign(Object.create({ style: 'short' }) as object, { type: 'conjunction' } as const)).format(['a', 'b', 'c'])).toBe('a, b, & c');
    class Sub extends Plain {}
    expect(new Sub('en', { type: 'conjunction' })).toBeInstanceOf(Sub);
    expect(counter.built).toBe(6);
  });

  it('answers what it does not do itself, and refuses what Intl refuses, as Intl does', () => {
    const { ListFormat, counter } = countingListFormat();
    const plain = new (withPlainEnglishLists(ListFormat))('en', { type: 'disjunction' });
    const icu = new Intl.ListFormat('en', { type: 'disjunction' });
    expect(plain.formatToParts(['a', 'b', 'c'])).toEqual(icu.formatToParts(['a', 'b', 'c']));
    expect(plain.resolvedOptions()).toEqual(icu.resolvedOptions());
    expect(() => plain.format([1, 2] as unknown as string[])).toThrow(TypeError);
    // One of Intl's, built once when first needed.
    expect(counter.built).toBe(1);
  });
});
