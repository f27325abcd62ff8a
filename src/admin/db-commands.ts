import fs from 'node:fs';
import type { CommandGroup } from './cli.ts';
import { UsageError } from './io.ts';
import { migrateToLatest, migrationStatus } from '../db/migrate.ts';

export const dbCommands: CommandGroup = {
  migrate: {
    summary: 'apply pending database migrations',
    changes: true,
    usage: '[--json]',
    options: {},
    migrate: false,
    async run({ db, print }) {
      const applied = await migrateToLatest(db);
      print({ applied }, applied.length ? applied.map((m) => `applied ${m}`) : 'database is up to date');
    },
  },
  backup: {
    summary: 'copy the SQLite database to a file while Latchkey keeps running (PostgreSQL: use pg_dump)',
    usage: 'FILE [--json]',
    options: {},
    positionals: 1,
    migrate: false,
    async run({ database, positionals, print }) {
      const target = positionals[0]!;
      if (!database.sqlite) throw new UsageError('db backup is for SQLite; back PostgreSQL up with pg_dump');
      if (fs.existsSync(target)) throw new UsageError(`${target} already exists; choose a new file`);
      // SQLite's online backup API copies a consistent snapshot page by page without
      // blocking writers for long.
      const { totalPages } = await database.sqlite.backup(target);
      print({ file: target, pages: totalPages }, `backed up ${totalPages} pages to ${target}`);
    },
  },
  status: {
    summary: 'list migrations and whether each is applied',
    usage: '[--json]',
    options: {},
    migrate: false,
    async run({ db, print }) {
      const status = await migrationStatus(db);
      print(status, status.map((m) => `${m.applied ? 'applied' : 'pending'}  ${m.name}`));
    },
  },
};
