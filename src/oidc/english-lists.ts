type ListFormatConstructor = typeof Intl.ListFormat;
type ListType = 'conjunction' | 'disjunction';

/**
 * oidc-provider builds two English list formatters as it loads, for the wording of a few error
 * messages ("missing required parameters 'a' and 'b'"). Intl builds them from ICU's locale data,
 * whose pages then stay resident: about 5 MB of an idle instance's 110. English lists need none
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
      // Intl reads a missing list as an empty one.
      const items = list === undefined ? [] : [...list];
      if (items.some((item) => typeof item !== 'string')) return this.#icu().format(items);
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
      const keys = options && typeof options === 'object' ? Object.keys(options) : [];
      const type = (options as { type?: unknown } | undefined)?.type;
      const plain = newTarget === proxy && locales === 'en' && keys.length === 1 && keys[0] === 'type' && (type === 'conjunction' || type === 'disjunction');
      return plain ? new PlainEnglishList(type) : Reflect.construct(target, args, newTarget);
    },
  });
  return proxy;
}
