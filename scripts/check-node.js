// Plain JavaScript on purpose: it must run on any Node, including ones too old to strip types.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`Latchkey needs Node.js >= 22.18 (24 LTS recommended); this is ${process.version}.`);
  process.exit(1);
}
