// node-oidc-provider configured like Yiwang for bench/run.py (never a production setup).
// Configuration arrives as JSON in BENCH_CONFIG: issuer, port, workers, redis_url,
// redis_prefix, clients, account {id, username, password, name}, jwks {keys}.
// The primary forks `workers` processes (node:cluster) sharing one port and one Redis,
// as gunicorn's workers share one port, PostgreSQL and Redis.
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import http from 'node:http';
import querystring from 'node:querystring';

import argon2 from 'argon2';
import Provider from 'oidc-provider';

import { redisAdapter } from './redis_adapter.mjs';

const config = JSON.parse(process.env.BENCH_CONFIG);
const API_RESOURCE = 'urn:yiwang-bench:api';

// Same argon2id cost as Yiwang's PasswordHasher (OWASP: m = 19 MiB, t = 2, p = 1).
const ARGON2 = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  return querystring.parse(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...headers,
  });
  res.end(body);
}

async function main() {
  const passwordHash = await argon2.hash(config.account.password, ARGON2);
  const account = config.account;

  const provider = new Provider(config.issuer, {
    adapter: redisAdapter(config.redis_url, config.redis_prefix),
    clients: config.clients,
    jwks: config.jwks,
    cookies: { keys: [config.cookie_key] },
    async findAccount(ctx, id) {
      if (id !== account.id) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            name: account.name,
            preferred_username: account.username,
            updated_at: account.updated_at,
          };
        },
      };
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'updated_at'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    // Yiwang: pairwise subjects by default (per sector = redirect host).
    subjectTypes: ['public', 'pairwise'],
    async pairwiseIdentifier(ctx, accountId, client) {
      return crypto.createHash('sha256')
        .update(client.sectorIdentifier).update(accountId).update(config.cookie_key)
        .digest('base64url');
    },
    // Yiwang: PKCE S256 for every client (oidc-provider 9 knows only S256).
    pkce: { required: () => true },
    // Yiwang: a refresh token whenever the client may use the grant, rotated every time.
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      ClientCredentials: 300,
      IdToken: 300,
      RefreshToken: 30 * 86400,
      Interaction: 900,
      Session: 1800,
      Grant: 365 * 86400,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      // client_credentials tokens are JWTs (like Yiwang's RFC 9068 tokens) through a
      // resource indicator. User tokens stay opaque: oidc-provider's userinfo refuses
      // tokens with an audience and its introspection refuses structured tokens.
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx) {
          return ctx.oidc.params?.grant_type === 'client_credentials' ? API_RESOURCE : undefined;
        },
        async getResourceServerInfo() {
          return {
            scope: 'api',
            audience: API_RESOURCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
        async useGrantedResource() {
          return false;
        },
      },
    },
    interactions: {
      url(ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
  });

  // The minimal interaction (login and consent) pages: what Yiwang's /login and
  // /consent do, without templates or translations.
  async function interaction(req, res) {
    const url = new URL(req.url, config.issuer);
    const parts = url.pathname.split('/').filter(Boolean); // interaction, uid, [action]
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== parts[1]) return send(res, 400, 'interaction mismatch');
      const action = parts[2];
      if (req.method === 'GET' && !action) {
        if (details.prompt.name === 'login') {
          return send(res, 200, `<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
<input name="identifier"><input name="password" type="password"><button>login</button></form>`);
        }
        return send(res, 200, `<form method="post" action="/interaction/${escapeHtml(details.uid)}/confirm">
<button name="decision" value="allow">allow</button></form>`);
      }
      if (req.method === 'POST' && action === 'login') {
        const form = await readForm(req);
        const identifier = String(form.identifier || '').trim().toLowerCase();
        const password = String(form.password || '');
        // Hash even for unknown users, as Yiwang does (no enumeration by timing).
        const ok = await argon2.verify(passwordHash, password) && identifier === account.username;
        if (!ok) return send(res, 401, 'invalid credentials');
        return provider.interactionFinished(req, res, { login: { accountId: account.id } }, {
          mergeWithLastSubmission: false,
        });
      }
      if (req.method === 'POST' && action === 'confirm') {
        await readForm(req);
        const { prompt: { details: missing }, params, session: { accountId } } = details;
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId, clientId: params.client_id });
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
        if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
        const grantId = await grant.save();
        return provider.interactionFinished(req, res, { consent: { grantId } }, {
          mergeWithLastSubmission: true,
        });
      }
      return send(res, 404, 'not found');
    } catch (err) {
      return send(res, 400, `interaction error: ${escapeHtml(err.message)}`);
    }
  }

  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res);
    } else if (req.url === '/readyz') {
      send(res, 200, 'ok', { 'Content-Type': 'text/plain' });
    } else {
      callback(req, res);
    }
  });
  server.keepAliveTimeout = 5000;
  server.listen(config.port, '127.0.0.1');
}

if (cluster.isPrimary && config.workers > 1) {
  for (let i = 0; i < config.workers; i += 1) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (signal !== 'SIGTERM') console.error(`worker ${worker.process.pid} exited (${signal || code})`);
  });
  const stop = () => {
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
