import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Kysely } from 'kysely';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { openDatabase, type OpenDatabase } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import type { Database } from '../db/schema.ts';
import { DomainError } from '../errors.ts';
import { resolveSecretBox, type SecretBox } from '../keys/secret-box.ts';
import { UsageError, type AdminIo } from './io.ts';
import { clientCommands } from './client-commands.ts';
import { userCommands } from './user-commands.ts';
import { roleCommands } from './role-commands.ts';
import { dbCommands } from './db-commands.ts';
import { apiCommands } from './api-commands.ts';
import { auditCommands } from './audit-commands.ts';
import { keyCommands } from './key-commands.ts';
import { idpCommands } from './idp-commands.ts';
import os from 'node:os';
import { recordAudit } from '../audit/audit.ts';

export interface CommandContext {
  db: Kysely<Database>;
  database: OpenDatabase;
  config: Config;
  io: AdminIo;
  values: Record<string, string | boolean | string[] | undefined>;
  /** The key-encryption box, for commands that seal or open secrets. */
  secretBox(): SecretBox;
  positionals: string[];
  /** Prints a result: JSON with --json, otherwise the given human-readable lines. */
  print(json: unknown, human: string | string[]): void;
}

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** How many positional arguments it takes. */
  positionals?: number;
  /** Whether the database must be migrated before the command (all but `db` commands). */
  migrate?: boolean;
  /** Whether it changes anything, and so belongs in the audit trail. */
  changes?: boolean;
  run(ctx: CommandContext): Promise<void>;
}

export type CommandGroup = Record<string, Command>;

const groups: Record<string, CommandGroup> = {
  client: clientCommands,
  user: userCommands,
  role: roleCommands,
  api: apiCommands,
  audit: auditCommands,
  keys: keyCommands,
  idp: idpCommands,
  db: dbCommands,
};

/** Groups that run a command when given none: `admin audit --user …` is `admin audit list --user …`. */
const defaultCommands: Record<string, string> = { audit: 'list' };

/** Who ran the script and from where, for the audit trail. */
function operator(): string {
  try {
    return `${os.userInfo().username}@${os.hostname()}`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}@${os.hostname()}`;
  }
}

function overview(): string {
  const lines = ['Usage: npm run --silent admin -- <group> <command> [options]', '', 'Commands:'];
  for (const [group, commands] of Object.entries(groups)) {
    for (const [name, command] of Object.entries(commands)) {
      lines.push(`  ${`${group} ${name}`.padEnd(22)} ${command.summary}`);
    }
  }
  lines.push('', 'Every command takes --help, and --json for machine-readable output.');
  lines.push('Settings (DATABASE_URL, ARGON2_*) come from the environment, as for the server.');
  return lines.join('\n');
}

function commandHelp(group: string, name: string, command: Command): string {
  return [`Usage: npm run --silent admin -- ${group} ${name} ${command.usage}`.trimEnd(), '', command.summary].join('\n');
}

/** Runs one admin command; returns the process exit code. */
export async function runAdmin(argv: string[], io: AdminIo): Promise<number> {
  const say = (stream: NodeJS.WritableStream, text: string) => stream.write(`${text}\n`);
  const [groupName, ...afterGroup] = argv;
  const implied = groupName ? defaultCommands[groupName] : undefined;
  const [commandName, ...rest] = implied && (afterGroup.length === 0 || afterGroup[0]!.startsWith('-')) ? [implied, ...afterGroup] : afterGroup;
  if (!groupName || groupName === '--help' || groupName === '-h' || groupName === 'help') {
    say(io.stdout, overview());
    return groupName ? 0 : 2;
  }
  const group = groups[groupName];
  if (!group) {
    say(io.stderr, `error: unknown command group ${JSON.stringify(groupName)}; run with --help for the list`);
    return 2;
  }
  const command = commandName ? group[commandName] : undefined;
  if (!command) {
    const known = Object.keys(group).join(', ');
    say(io.stderr, `error: ${commandName ? `unknown command ${JSON.stringify(`${groupName} ${commandName}`)}` : 'missing command'}; ${groupName} commands: ${known}`);
    return 2;
  }

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    say(io.stderr, `error: ${(err as Error).message.split('\n')[0]}`);
    return 2;
  }
  if (parsed.values.help) {
    say(io.stdout, commandHelp(groupName, commandName!, command));
    return 0;
  }
  const expected = command.positionals ?? 0;
  if (parsed.positionals.length !== expected) {
    say(io.stderr, `error: expected ${expected} argument${expected === 1 ? '' : 's'}; usage: ${groupName} ${commandName} ${command.usage}`);
    return 2;
  }

  let config: Config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      say(io.stderr, `error: invalid setting ${err.message}`);
      return 2;
    }
    throw err;
  }

  const json = parsed.values.json === true;
  const database = openDatabase(config.databaseUrl);
  let box: SecretBox | undefined;
  // Options as given, for the audit trail: no command takes a secret as an argument.
  const audited = async (outcome: 'success' | 'failure', reason?: string) => {
    if (!command.changes) return;
    // Secrets never go to the trail, even the few a command may take as an argument.
    const options = Object.fromEntries(Object.entries(parsed.values).filter(([k]) => !['json', 'help'].includes(k) && !k.includes('secret')));
    await recordAudit(database.db, {
      event: `admin.${groupName}.${commandName}`,
      outcome,
      reason,
      actor: operator(),
      details: { arguments: parsed.positionals, options },
    });
  };
  try {
    if (command.migrate !== false) await migrateToLatest(database.db);
    await command.run({
      db: database.db,
      database,
      config,
      io,
      values: parsed.values as CommandContext['values'],
      positionals: parsed.positionals,
      // The server warns about a development secret at start-up; the script stays quiet.
      secretBox: () => (box ??= resolveSecretBox(config, () => {})),
      print(data, human) {
        say(io.stdout, json ? JSON.stringify(data, null, 2) : Array.isArray(human) ? human.join('\n') : human);
      },
    });
    await audited('success');
    return 0;
  } catch (err) {
    if (err instanceof DomainError || err instanceof UsageError) {
      say(io.stderr, `error: ${err.message}`);
      await audited('failure', err.message).catch(() => {});
      return err instanceof UsageError ? 2 : 1;
    }
    say(io.stderr, `error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await database.close();
  }
}
