type ListFormatConstructor = typeof Intl.ListFormat;
type ListType = 'conjunction' | 'disjunction';

/**
 * oidc-provider builds two English list formatters as it loads, for the wording of a few error
 * messages ("missing required parameters 'a' and 'b'"). Intl builds them from ICU's locale data,
 * whose pages then stay resident: about 4 MB of an idle instance's 110. English lists need none
 * of it, so exactly those two are built without it; every other list formatter is Intl's own.
 */
export function withPlainEnglishLists(Real: ListFormatConstructor): ListFormatConstructor {
  class PlainEnglishList {
    readonly #type: ListType;
    #real: Intl.ListFormat | undefined;

    constructor(type: ListType) {
      this.#type = type;
    }

    // CLDR's English patterns: "a and b", "a, b, and c" ("or" alike).
    format(list?: Iterable<string>): string {
      const items: string[] = [];
      // Intl reads a missing list as an empty one, and refuses anything but strings in one: its
      // own formatter gives the same refusal.
      for (const item of list === undefined ? [] : list) {
        if (typeof item !== 'string') return this.#icu().format([item]);
        items.push(item);
      }
      const word = this.#type === 'conjunction' ? 'and' : 'or';
      if (items.length < 3) return items.join(` ${word} `);
      return `${items.slice(0, -1).join(', ')}, ${word} ${items.at(-1)}`;
    }

    // oidc-provider only formats; anything else is answered by Intl's own, built then.
    formatToParts(list: Iterable<string>) {
      return this.#icu().formatToParts(list);
    }

    resolvedOptions() {
      return this.#icu().resolvedOptions();
    }

    #icu(): Intl.ListFormat {
      return (this.#real ??= new Real('en', { type: this.#type }));
    }
  }
  Object.setPrototypeOf(PlainEnglishList.prototype, Real.prototype);

  const proxy: ListFormatConstructor = new Proxy(Real, {
    construct(target, args: unknown[], newTarget) {
      const [locales, options] = args;
      // Only a formatter built as such (not a subclass's), with nothing else asked of it: every
      // option Intl reads, own or inherited.
      if (newTarget === proxy && locales === 'en' && typeof options === 'object' && options !== null) {
        const { type, style, localeMatcher } = options as Intl.ListFormatOptions;
        if ((type === 'conjunction' || type === 'disjunction') && style === undefined && localeMatcher === undefined) return new PlainEnglishList(type);
      }
      return Reflect.construct(target, args, newTarget);
    },
  });
  Object.defineProperty(PlainEnglishList.prototype, 'constructor', { value: proxy, writable: true, configurable: true });
  return proxy;
}
