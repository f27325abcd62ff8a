import type { Kysely } from 'kysely';
import type { Account } from 'oidc-provider';
import type { Database } from '../db/schema.ts';
import { findUserById } from '../accounts/users.ts';
import { roleNamesOfUser } from '../rbac/roles.ts';

/**
 * The provider's view of a user. A disabled or deleted user is not found, which ends their
 * sessions and makes their refresh tokens fail at the next use.
 */
export async function findAccount(db: Kysely<Database>, sub: string): Promise<Account | undefined> {
  const user = await findUserById(db, sub);
  if (!user || user.disabled) return undefined;
  return {
    accountId: user.id,
    async claims(_use, scope) {
      const granted = new Set(scope.split(' '));
      return {
        sub: user.id,
        email: user.email,
        email_verified: user.email_verified === 1,
        ...(user.name ? { name: user.name } : {}),
        ...(granted.has('roles') ? { roles: await roleNamesOfUser(db, user.id) } : {}),
      };
    },
  };
}
