// The tests' OpenID Connect provider: panva's certified `oidc-provider`, with its own login page (devInteractions).
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET
//
// Listens on 127.0.0.1:PORT (the issuer is http://127.0.0.1:PORT) and prints `ready <issuer>` once it answers.
// Anyone can sign in on its login page: the login typed in is the account. `ada@example.com` signs in as that address
// with `email_verified: true`; `ada@example.com#unverified` as the same address with `email_verified: false`.
//
// Test-only: `POST /test/tamper?mode=<mode>` makes the token endpoint hand out ID tokens altered after the provider
// signed them, as an attacker or a broken provider would (`aud`: for another client; `nonce`: another nonce;
// `expired`: expired an hour ago; `unpublished-key`: signed with a key the issuer does not publish; `none`: as issued).
import { generateKeyPair, exportJWK, decodeJwt, SignJWT } from 'jose';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey: signingKey } = await generateKeyPair('RS256', { extractable: true });
const { privateKey: unpublishedKey } = await generateKeyPair('RS256', { extractable: true });
const published = { ...(await exportJWK(signingKey)), kid: 'published', alg: 'RS256', use: 'sig' };

function accountFor(login) {
  const unverified = login.endsWith('#unverified');
  const email = unverified ? login.slice(0, -'#unverified'.length) : login;
  const local = email.split('@')[0];
  return {
    accountId: login,
    async claims() {
      return {
        sub: login,
        email,
        email_verified: !unverified,
        name: local.charAt(0).toUpperCase() + local.slice(1),
      };
    },
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: ['http://127.0.0.1/login/oidc/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [published] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false, // the ID token carries the email claims (most hosted providers do the same)
  findAccount: async (ctx, id) => accountFor(id),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['test-only-cookie-key'] },
  // First-party client: no consent screen, only the provider's own login page (oidc-provider's documented recipe).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

// Every app under test listens on its own port of 127.0.0.1: allow each one's callback.
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' && url.hostname === '127.0.0.1' && url.pathname === '/login/oidc/callback';
  } catch {
    return false;
  }
};

let tamper = 'none';
const TAMPER_MODES = new Set(['none', 'aud', 'nonce', 'expired', 'unpublished-key']);

provider.use(async (ctx, next) => {
  if (ctx.path === '/test/tamper' && ctx.method === 'POST') {
    const mode = ctx.query.mode;
    if (!TAMPER_MODES.has(mode)) {
      ctx.status = 400;
      ctx.body = `unknown mode ${mode}`;
      return;
    }
    tamper = mode;
    ctx.body = `tamper ${mode}`;
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && tamper !== 'none' && ctx.body?.id_token) {
    const claims = decodeJwt(ctx.body.id_token);
    let key = signingKey;
    let kid = 'published';
    const now = Math.floor(Date.now() / 1000);
    if (tamper === 'aud') claims.aud = 'another-client';
    if (tamper === 'nonce') claims.nonce = 'a-nonce-this-browser-never-sent';
    if (tamper === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600, auth_time: now - 7200 });
    if (tamper === 'unpublished-key') [key, kid] = [unpublishedKey, 'unpublished'];
    ctx.body = { ...ctx.body, id_token: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key) };
  }
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
