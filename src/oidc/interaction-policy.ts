import { interactionPolicy } from 'oidc-provider';

const { Check, base } = interactionPolicy;

/**
 * oidc-provider's default prompts, plus one login check: a session whose account can no longer
 * be found (disabled or deleted) must sign in again. Without it the provider would go on to the
 * consent prompt with no account and fail.
 */
export function createInteractionPolicy() {
  const policy = base();
  policy.get('login')!.checks.add(
    new Check('account_unavailable', 'The signed-in account is no longer available', (ctx) =>
      ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
    0,
  );
  return policy;
}
