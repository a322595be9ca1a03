'use strict';
// Interop test server on Node `ws` (8.x), for tests/interop/interop.c.
//
//   node server.js CERT.pem KEY.pem [MODE]
//
// Listens on 127.0.0.1 only: a ws:// and a wss:// port (both chosen by the OS),
// prints `ws://127.0.0.1:P` and `wss://127.0.0.1:Q` (one line each), then serves
// until killed or MAX_LIFE_MS pass. MODE is the permessage-deflate setting:
//
//   plain (default)  perMessageDeflate: false (declines any offer)
//   deflate          perMessageDeflate: true (context takeover both ways; ws
//                    compresses only messages of 1024 bytes or more, its default)
//   deflate-nct      perMessageDeflate: { serverNoContextTakeover: true,
//                    clientNoContextTakeover: true, threshold: 0 } (no context
//                    takeover either way; every message compressed, even empty ones)
//
// Same paths as tests/interop/server_websockets.py:
//
//   /echo[?id=X]            echo text/binary as the same type; its close frame and TCP close are recorded under X
//   /watch?id=X             text `frame CODE REASON` once the close frame of connection X has arrived, then
//                           text `tcp-closed` once its TCP connection has ended; `timeout` instead if one does
//                           not happen within 5 s; then close 1000
//   /close?code=N&reason=R[&id=X]  server closes with N and R (no code: empty close frame); the
//                           client's reply and TCP close are recorded under X
//   /refuse403              HTTP 403 instead of the upgrade
//   /subprotocol            picks the first offered subprotocol among wsb.v1, wsb.v2; text `subprotocol:P`; then echo
//   /headers                one text message, a `name: value` line per request header (names lowercase); then echo
//   /fragmented?parts=5[&binary=1]  one message `fragment-0|fragment-1|...` in `parts` frames; then echo
//   /big?size=N             one binary message of N bytes, byte i = i % 251; then echo
//   /ping?payload=P         ping P; once the pong arrives, text `pong:P`; then echo

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const MAX_LIFE_MS = 30 * 60 * 1000;
const MODES = {
  plain: false,
  deflate: true,
  'deflate-nct': { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 },
};
const MODE = process.argv[4] || 'plain';
if (!(MODE in MODES)) {
  console.error(`unknown mode ${MODE} (${Object.keys(MODES).join(', ')})`);
  process.exit(2);
}
const SUBPROTOCOLS = ['wsb.v1', 'wsb.v2'];

const WATCH_WAIT_MS = 5000;
// id -> { frame: [code, reason], tcp: true }: what /echo?id=X saw of its close.
const records = new Map();
let waiters = [];

function record(id, key, value) {
  const r = records.get(id) || {};
  r[key] = value;
  records.set(id, r);
  const ws = waiters;
  waiters = [];
  for (const cb of ws) cb();
}

// Calls cb(value) once records[id][key] exists, or cb(undefined) after ms.
function waitRecord(id, key, ms, cb) {
  let done = false;
  const check = () => {
    if (done) return;
    const r = records.get(id);
    if (r && key in r) {
      done = true;
      clearTimeout(timer);
      cb(r[key]);
    } else {
      waiters.push(check);
    }
  };
  const timer = setTimeout(() => {
    if (!done) {
      done = true;
      cb(undefined);
    }
  }, ms);
  check();
}

function parse(reqUrl) {
  const u = new URL(reqUrl, 'http://127.0.0.1');
  return { path: u.pathname, q: u.searchParams };
}

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: MODES[MODE],
  handleProtocols: (offered, req) => {
    if (parse(req.url).path !== '/subprotocol') return false;
    for (const p of offered) if (SUBPROTOCOLS.includes(p)) return p;
    return false;
  },
});

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function handle(ws, req) {
  const { path, q } = parse(req.url);
  ws.on('error', (e) => console.error(`[node-ws] ${path}: ${e.message}`));
  const id = q.get('id');
  if ((path === '/echo' || path === '/close') && id !== null) {
    // ws emits 'close' only once the TCP connection is over too; its
    // receiver's 'conclude' event (ws 8.x internals) is the close frame itself.
    if (ws._receiver && typeof ws._receiver.on === 'function') {
      ws._receiver.on('conclude', (code, reason) => record(id, 'frame', [code, reason.toString()]));
    }
    ws.on('close', (code, reason) => {
      const r = records.get(id);
      if (!r || !('frame' in r)) record(id, 'frame', [code, reason.toString()]);
    });
    req.socket.on('close', () => record(id, 'tcp', true));
  }
  if (path === '/echo') {
    echo(ws);
  } else if (path === '/watch') {
    waitRecord(id || '', 'frame', WATCH_WAIT_MS, (frame) => {
      if (frame === undefined) {
        ws.send('timeout');
        ws.close(1000);
        return;
      }
      ws.send(`frame ${frame[0]} ${frame[1]}`);
      waitRecord(id || '', 'tcp', WATCH_WAIT_MS, (tcp) => {
        ws.send(tcp ? 'tcp-closed' : 'timeout');
        ws.close(1000);
      });
    });
  } else if (path === '/close') {
    if (q.has('code')) ws.close(Number(q.get('code')), q.get('reason') || '');
    else ws.close(); // empty close frame: the client sees 1005
  } else if (path === '/subprotocol') {
    ws.send(`subprotocol:${ws.protocol}`);
    echo(ws);
  } else if (path === '/headers') {
    let text = '';
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      text += `${req.rawHeaders[i].toLowerCase()}: ${req.rawHeaders[i + 1]}\n`;
    }
    ws.send(text);
    echo(ws);
  } else if (path === '/fragmented') {
    const parts = Number(q.get('parts') || '5');
    const binary = q.get('binary') === '1';
    for (let i = 0; i < parts; i++) {
      const frag = Buffer.from(`fragment-${i}|`);
      ws.send(frag, { binary, fin: i === parts - 1 });
    }
    echo(ws);
  } else if (path === '/big') {
    const size = Number(q.get('size') || String(1 << 20));
    const buf = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) buf[i] = i % 251;
    ws.send(buf, { binary: true });
    echo(ws);
  } else if (path === '/ping') {
    const payload = q.get('payload') || 'abc';
    ws.once('pong', (data) => {
      ws.send(`pong:${data.toString()}`);
      echo(ws);
    });
    ws.ping(Buffer.from(payload));
  } else {
    ws.close(4404, 'no such path');
  }
}

function onUpgrade(req, socket, head) {
  socket.on('error', () => {});
  if (parse(req.url).path === '/refuse403') {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n' +
      'Connection: close\r\n\r\nForbidden\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => handle(ws, req));
}

const plain = http.createServer((req, res) => { res.writeHead(426); res.end(); });
const tls = https.createServer({
  cert: fs.readFileSync(process.argv[2]),
  key: fs.readFileSync(process.argv[3]),
}, (req, res) => { res.writeHead(426); res.end(); });
plain.on('upgrade', onUpgrade);
tls.on('upgrade', onUpgrade);

plain.listen(0, '127.0.0.1', () => {
  tls.listen(0, '127.0.0.1', () => {
    process.stdout.write(`ws://127.0.0.1:${plain.address().port}\n`);
    process.stdout.write(`wss://127.0.0.1:${tls.address().port}\n`);
  });
});
setTimeout(() => process.exit(0), MAX_LIFE_MS).unref();
process.on('SIGTERM', () => process.exit(0));
