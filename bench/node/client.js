// Node `ws` 8.x benchmark client. Prints one JSON object (one line).
//   node client.js SCENARIO key=value...   (same scenarios and keys as rs-client)
// Node is single-threaded: in "pipelined" the sender and the receiver share
// the event loop (sending in batches while bufferedAmount is below 1 MiB).
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

function opts() {
  const o = { perMessageDeflate: false, maxPayload: 0 };
  if (url.startsWith('wss://') && a.ca) o.ca = fs.readFileSync(a.ca);
  return o;
}
function open() {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, opts());
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => res(ws));
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
  const ws = await open();
  const t0 = now();
  await new Promise((res) => {
    let got = 0, sent = 0;
    ws.on('message', () => { if (++got === n) res(); });
    const pump = () => {
      while (sent < n && ws.bufferedAmount < (1 << 20)) { ws.send(p); sent++; }
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
  const ws = await open();
  const data = Buffer.alloc(size, 7);
  const t = [];
  for (let i = 0; i < reps + 1; i++) {
    const t0 = now();
    const m = await new Promise((res) => { ws.once('message', res); ws.send(data); });
    if (m.length !== size) throw new Error('bad echo length ' + m.length);
    t.push((now() - t0) / 1e6);
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
