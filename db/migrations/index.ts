import type { Migration } from 'kysely/migration';
import * as initial from './0001_initial.ts';
import * as apis from './0002_apis.ts';
import * as sealedClientSecrets from './0003_sealed_client_secrets.ts';
import * as rbac from './0004_rbac.ts';
import * as security from './0005_security.ts';
import * as keyRotation from './0006_key_rotation.ts';
import * as clientBranding from './0007_client_branding.ts';
import * as federation from './0008_federation.ts';
import * as registryVersion from './0009_registry_version.ts';
import * as apiTokenSigningAlg from './0010_api_token_signing_alg.ts';
import * as partialPayloadIndexes from './0011_partial_payload_indexes.ts';

/** Append-only: a landed migration is never edited; a change is a new entry. */
export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_apis': apis,
  '0003_sealed_client_secrets': sealedClientSecrets,
  '0004_rbac': rbac,
  '0005_security': security,
  '0006_key_rotation': keyRotation,
  '0007_client_branding': clientBranding,
  '0008_federation': federation,
  '0009_registry_version': registryVersion,
  '0010_api_token_signing_alg': apiTokenSigningAlg,
  '0011_partial_payload_indexes': partialPayloadIndexes,
};
