import type { CommandGroup } from './cli.ts';
import { migrateToLatest, migrationStatus } from '../db/migrate.ts';

export const dbCommands: CommandGroup = {
  migrate: {
    summary: 'apply pending database migrations',
    usage: '[--json]',
    options: {},
    migrate: false,
    async run({ db, print }) {
      const applied = await migrateToLatest(db);
      print({ applied }, applied.length ? applied.map((m) => `applied ${m}`) : 'database is up to date');
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
