// Node `ws` 8.x benchmark client. Prints one JSON object (one line).
//   node client.js SCENARIO key=value...   (same scenarios and keys as rs-client)
// Node is single-threaded: in "pipelined" the sender and the receiver share
// the event loop (sending in batches while bufferedAmount is below 1 MiB).
// compress=1: perMessageDeflate on (ws's defaults; nct=1: no context takeover
// either way); exits if the server does not take it. corpus=FILE, text=1,
// warm=1: as in bench/c/wsb_client.c.
'use strict';
const fs = require('fs');
const WebSocket = require('ws');

const scn = process.argv[2];
const a = {};
for (const kv of process.argv.slice(3)) {
  const i = kv.indexOf('=');
  if (i > 0) a[kv.slice(0, i)] = kv.slice(i + 1);
}
const num = (k, d) => (a[k] !== undefined ? Number(a[k]) : d);
const url = a.url;
const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

let lines = null, corpus = null;
function loadCorpus() {
  if (!a.corpus || corpus) return;
  corpus = fs.readFileSync(a.corpus);
  lines = corpus.toString('latin1').split('\n');
  lines.pop(); // after the last newline
}
const compress = a.compress === '1';
function opts() {
  let pmd = false;
  if (compress) pmd = a.nct === '1' ? { clientNoContextTakeover: true, serverNoContextTakeover: true } : true;
  const o = { perMessageDeflate: pmd, maxPayload: 0 };
  if (url.startsWith('wss://') && a.ca) o.ca = fs.readFileSync(a.ca);
  return o;
}
function open() {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, opts());
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => {
      if (compress && !ws.extensions.includes('permessage-deflate')) {
        rej(new Error('compress=1 but the server did not take permessage-deflate'));
      }
      res(ws);
    });
    ws.once('error', rej);
  });
}
function latJson(v) {
  v.sort((x, y) => x - y);
  const p = (q) => v[Math.round((v.length - 1) * q)];
  return { n: v.length, median_us: p(0.5), p99_us: p(0.99), min_us: v[0] };
}
function rssKib() {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}
function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}
function closeWs(ws) {
  return new Promise((res) => {
    ws.once('close', res);
    ws.close(1000);
  });
}

async function pingpong() {
  const n = num('n', 20000), w = num('warmup', 1000), p = 'x'.repeat(num('size', 64));
  const ws = await open();
  const lat = [];
  await new Promise((res) => {
    let i = 0, t = 0;
    ws.on('message', () => {
      if (i >= w) lat.push(now() - t);
      i++;
      if (i === n + w) return res();
      t = now();
      ws.send(p);
    });
    t = now();
    ws.send(p);
  });
  await closeWs(ws);
  return latJson(lat);
}

async function pipelined() {
  const n = num('n', 1000000), p = 'x'.repeat(num('size', 64));
  loadCorpus();
  const ws = await open();
  const t0 = now();
  await new Promise((res, rej) => {
    let got = 0, sent = 0;
    ws.on('message', (m) => {
      if (lines && m.length !== lines[got % lines.length].length) {
        rej(new Error(`echo ${got} has ${m.length} bytes`));
      }
      if (++got === n) res();
    });
    const pump = () => {
      while (sent < n && ws.bufferedAmount < (1 << 20)) {
        ws.send(lines ? lines[sent % lines.length] : p);
        sent++;
      }
      if (sent < n) setImmediate(pump);
    };
    pump();
  });
  const secs = (now() - t0) / 1e6;
  await closeWs(ws);
  return { n, secs, msgs_per_s: n / secs };
}

async function bulk() {
  const size = num('size', 16 << 20), reps = num('reps', 3);
  loadCorpus();
  const ws = await open();
  const data = Buffer.alloc(size, 7);
  if (corpus) for (let i = 0; i < size; i += corpus.length) corpus.copy(data, i);
  // Text goes as a string (what a JSON application sends); binary as a Buffer.
  const payload = a.text === '1' ? data.toString('latin1') : data;
  const t = [];
  for (let i = 0; i < reps + 1; i++) {
    const t0 = now();
    const m = await new Promise((res) => { ws.once('message', res); ws.send(payload); });
    t.push((now() - t0) / 1e6);
    if (m.length !== size || !data.equals(m)) throw new Error('bad echo, length ' + m.length);
  }
  await closeWs(ws);
  const r = t.slice(1).sort((x, y) => x - y);
  const med = r[Math.round((r.length - 1) / 2)];
  return { size, reps, median_ms: med * 1e3, mib_per_s: size / 1048576 / med };
}

async function scale() {
  const n = num('n', 1000), idle = num('idle', 5);
  const r0 = rssKib();
  const t0 = now();
  const all = [];
  for (let i = 0; i < n; i++) all.push(open());
  const socks = await Promise.all(all);
  const open_s = (now() - t0) / 1e6;
  if (a.warm === '1') {
    // One message each way on every socket: compression state in place.
    loadCorpus();
    await Promise.all(socks.map((s, i) => new Promise((res) => {
      s.once('message', res);
      s.send(lines ? lines[i % lines.length] : 'warm');
    })));
  }
  const r1 = rssKib();
  const c0 = cpuUs();
  await new Promise((res) => setTimeout(res, idle * 1000));
  const c1 = cpuUs();
  for (const s of socks) s.terminate();
  return { n, open_s, rss_before_kib: r0, rss_after_kib: r1, rss_per_socket_kib: (r1 - r0) / n,
    idle_s: idle, idle_cpu_ms: (c1 - c0) / 1e3 };
}

async function handshake() {
  const n = num('n', 200);
  const lat = [];
  for (let i = 0; i < n + 5; i++) {
    const t0 = now();
    const ws = await open();
    lat.push(now() - t0);
    await closeWs(ws);
  }
  return latJson(lat.slice(5));
}

const fns = { pingpong, pipelined, bulk, scale, handshake };
if (!fns[scn] || !url) {
  console.error('usage: node client.js pingpong|pipelined|bulk|scale|handshake url=... key=value...');
  process.exit(2);
}
fns[scn]().then((r) => { console.log(JSON.stringify(r)); process.exit(0); },
  (e) => { console.error('node client: ' + (e && e.stack || e)); process.exit(1); });
