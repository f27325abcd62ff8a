import type { CommandGroup } from './cli.ts';
import { UsageError } from './io.ts';
import { listSigningKeys, rotateSigningKey, SIGNING_ALGS, type SigningAlg, type SigningKeyInfo } from '../keys/keys.ts';

const at = (seconds: number | null) => (seconds === null ? '-' : seconds === 0 ? 'from the start' : new Date(seconds * 1000).toISOString());

function describeKey(k: SigningKeyInfo): string {
  return `${k.kid}  ${k.alg.padEnd(6)} ${k.state.padEnd(9)} signs from ${at(k.activatesAt)}  published until ${k.retiresAt === null ? 'replaced' : at(k.retiresAt)}`;
}

export const keyCommands: CommandGroup = {
  list: {
    summary: 'list signing keys: pending (published, not yet signing), active, retiring, retired',
    usage: '[--json]',
    options: {},
    async run({ db, print }) {
      const keys = await listSigningKeys(db, Math.floor(Date.now() / 1000));
      print(keys, keys.map(describeKey));
    },
  },
  rotate: {
    summary: 'add a signing key, published now and signing after the lead time; the old one retires once its tokens have expired',
    usage: '[--alg RS256|ES256|EdDSA] [--lead-time SECONDS] [--json]',
    options: { alg: { type: 'string' }, 'lead-time': { type: 'string' } },
    changes: true,
    async run({ db, config, values, print, secretBox }) {
      const alg = (values.alg as string | undefined) ?? 'RS256';
      if (!(SIGNING_ALGS as readonly string[]).includes(alg)) throw new UsageError(`--alg must be one of ${SIGNING_ALGS.join(', ')}`);
      const lead = values['lead-time'] === undefined ? config.keys.rotationLeadSeconds : Number(values['lead-time']);
      if (!Number.isInteger(lead) || lead < 0 || lead > 7 * 86400) throw new UsageError('--lead-time must be a whole number of seconds from 0 to 604800');
      const result = await rotateSigningKey(db, secretBox(), {
        alg: alg as SigningAlg,
        leadSeconds: lead,
        retireAfterSeconds: config.keys.retireAfterSeconds,
        now: Math.floor(Date.now() / 1000),
      });
      print(result, [
        `added ${result.added.kid} (${alg}): published now, signs from ${at(result.added.activatesAt)}`,
        result.retiring
          ? `${result.retiring.kid} keeps signing until then and stays published until ${at(result.retiring.retiresAt)}`
          : `first ${alg} key: clients may ask for ${alg} once it is active`,
        `running instances pick this up within ${config.keys.refreshSeconds} seconds`,
      ]);
    },
  },
};
