const unpairedSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why PostgreSQL cannot store `text` (text and jsonb refuse U+0000, jsonb refuses a UTF-16 surrogate
 * without its pair, though both are valid in a JS string and in JSON), or null when it can. Checked on
 * what clients send (api/input-guard.ts) and on what expressions compute (a result that cannot be
 * stored must fail its own job, not the batched write it would share with other jobs).
 */
export function unstorableReason(text: string): string | null {
  if (text.includes('\u0000')) return 'contains U+0000 (NUL)';
  return unpairedSurrogate.test(text) ? 'contains an unpaired UTF-16 surrogate' : null;
}

/**
 * `text` made storable: U+0000 and unpaired surrogates become U+FFFD. For text we write ourselves that
 * may quote user data (error messages), where failing the write would be worse than a replaced character.
 */
export function storableText(text: string): string {
  return text.replaceAll('\u0000', '\ufffd').replace(new RegExp(unpairedSurrogate.source, 'g'), '\ufffd');
}
