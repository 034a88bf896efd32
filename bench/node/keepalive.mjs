// A keep-alive load generator for bench/run.py (issue 12), as a portal's HTTP client
// library behaves: autocannon opens CONNECTIONS connections once and reuses each of them,
// reconnecting only when the server closes one. It reads the same request file as
// wrk/scenario.lua ("cycle" mode: one request per line, tab-separated METHOD, PATH, BODY,
// then "Name: value" headers, sent round-robin) and writes the same JSON summary, plus
// what wrk cannot see: how many responses said `Connection: close` and how many times a
// connection had to be opened again.
//
//   node keepalive.mjs URL CONNECTIONS SECONDS REQUEST_FILE OUT_JSON
import { readFileSync, writeFileSync } from 'node:fs'
import autocannon from 'autocannon'

const [url, connections, seconds, requestFile, outPath] = process.argv.slice(2)

function parse (line) {
  const [method, path, body, ...rest] = line.split('\t')
  const headers = {}
  for (const field of rest) {
    const at = field.indexOf(':')
    if (at > 0) headers[field.slice(0, at)] = field.slice(at + 1).trim()
  }
  return { method, path, headers, ...(body ? { body } : {}) }
}

const requests = readFileSync(requestFile, 'utf8').split('\n').filter(Boolean).map(parse)
let closes = 0
let connects = 0
const statuses = {}

function setupClient (client) {
  // Every connection the client opens, the first included (the constructor connects
  // after this hook runs).
  const connect = client._connect
  client._connect = function (...args) {
    connects += 1
    return connect.apply(this, args)
  }
  client.on('headers', ({ statusCode, headers }) => {
    statuses[statusCode] = (statuses[statusCode] || 0) + 1
    // llhttp gives the headers as a flat [name, value, ...] list.
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'connection' && /close/i.test(String(headers[i + 1]))) closes += 1
    }
  })
}

const startedAt = Date.now() / 1000
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  timeout: 10,
  // Round-robin over the prepared requests, on every connection.
  requests,
  setupClient
})

const ms = (value) => Math.round(value * 1000)
const non2xx = result.non2xx || 0
writeFileSync(outPath, JSON.stringify({
  requests: result.requests.total,
  duration_us: Math.round(result.duration * 1e6),
  errors: { connect: result.errors - result.timeouts, read: 0, write: 0, status: non2xx, timeout: result.timeouts },
  latency_us: {
    p50: ms(result.latency.p50),
    p90: ms(result.latency.p90),
    p99: ms(result.latency.p99),
    max: ms(result.latency.max),
    mean: result.latency.mean * 1000
  },
  used: result.requests.total,
  started_at: startedAt,
  exhausted_at: 0,
  statuses,
  closes,
  reconnects: Math.max(connects - Number(connections), 0)
}) + '\n')
