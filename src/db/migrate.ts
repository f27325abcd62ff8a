import { Migrator, type MigrationResultSet } from 'kysely/migration';
import type { Kysely } from 'kysely';
import { migrations } from '../../db/migrations/index.ts';
import type { Database } from './schema.ts';

function migrator(db: Kysely<Database>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

export class MigrationError extends Error {}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const { error, results }: MigrationResultSet = await migrator(db).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function migrationStatus(db: Kysely<Database>): Promise<{ name: string; applied: boolean }[]> {
  const list = await migrator(db).getMigrations();
  return list.map((m) => ({ name: m.name, applied: m.executedAt !== undefined }));
}
