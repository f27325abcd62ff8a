// src/main.ts imports this before anything else: oidc-provider builds its list formatters as it
// loads, so they are replaced before any module imports it.
import { withPlainEnglishLists } from './english-lists.ts';

Object.defineProperty(Intl, 'ListFormat', { value: withPlainEnglishLists(Intl.ListFormat) });
