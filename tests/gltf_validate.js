// Runs the Khronos glTF validator (npm package gltf-validator) on a GLB; used by tests/test_trainer.py.
const fs = require('fs');
const validator = require('gltf-validator');
const data = new Uint8Array(fs.readFileSync(process.argv[2]));
validator.validateBytes(data).then((r) => {
  console.log(JSON.stringify({errors: r.issues.numErrors, warnings: r.issues.numWarnings,
    messages: r.issues.messages.filter(m => m.severity <= 1).slice(0, 10)}));
  process.exit(r.issues.numErrors > 0 ? 1 : 0);
}).catch((e) => { console.error(e); process.exit(2); });
