import { z } from 'zod';
import {
  ApiTokenCreated,
  ApiTokenRow,
  ApiTokensAnswer,
  PasswordBody,
  TokenCreateBody,
  UserAnswer,
  UserCreateBody,
  UserName,
  UsersAnswer,
} from '../../../protocol/auth-api.js';
import { createToken, listTokens, revokeToken } from '../../auth/tokens.js';
import { addUser, disableUser, listUsers, setPassword } from '../../auth/users.js';
import { route } from '../route.js';

/** Accounts and API tokens (admin only). Every change is audited by the generic hook (passwords redacted). */
const ADMIN = ['admin'] as const;

export const accountRoutes = [
  route({
    method: 'GET',
    url: '/v1/users',
    listeners: ['operator'],
    access: ADMIN,
    summary: 'every operator account: role, school or carrier, created, disabled',
    schema: { response: { 200: UsersAnswer } },
    handler: (_req, { auth }) => ({ users: listUsers(auth.db) }),
  }),
  route({
    method: 'POST',
    url: '/v1/users',
    listeners: ['operator'],
    access: ADMIN,
    summary: 'add an account; without a password one is generated and answered once',
    description: 'A school account needs school, a carrier account carrier. A name in use: auth.user-exists (409).',
    schema: { body: UserCreateBody, response: { 200: UserAnswer } },
    handler: (req, { auth }) => addUser(auth.db, req.body),
  }),
  route({
    method: 'POST',
    url: '/v1/users/:name/password',
    listeners: ['operator'],
    access: ADMIN,
    summary: "set an account's password (generated and answered once when none is given); its sessions end",
    schema: { params: z.object({ name: UserName }), body: PasswordBody, response: { 200: UserAnswer } },
    handler: (req, { auth }) => setPassword(auth.db, req.params.name, req.body.password),
  }),
  route({
    method: 'POST',
    url: '/v1/users/:name/disable',
    listeners: ['operator'],
    access: ADMIN,
    summary: 'disable an account: it cannot sign in, its sessions end at once',
    schema: { params: z.object({ name: UserName }), response: { 200: UserAnswer } },
    handler: (req, { auth }) => ({ user: disableUser(auth.db, req.params.name) }),
  }),
  route({
    method: 'GET',
    url: '/v1/tokens',
    listeners: ['operator'],
    access: ADMIN,
    summary: 'every API token: id, name, role, scope, expiry, revoked (never the token itself)',
    schema: { response: { 200: ApiTokensAnswer } },
    handler: (_req, { auth }) => ({ tokens: listTokens(auth.db) }),
  }),
  route({
    method: 'POST',
    url: '/v1/tokens',
    listeners: ['operator'],
    access: ADMIN,
    summary: 'create an API token of a role (school/carrier with its id), optionally expiring; the token is answered once',
    schema: { body: TokenCreateBody, response: { 200: ApiTokenCreated } },
    handler: (req, { auth, audit }) => {
      const t = createToken(auth.db, req.body);
      audit?.({ id: t.info.id });
      return t;
    },
  }),
  route({
    method: 'POST',
    url: '/v1/tokens/:id/revoke',
    listeners: ['operator'],
    access: ADMIN,
    summary: 'revoke an API token at once',
    schema: { params: z.object({ id: z.string().regex(/^[0-9a-f]{12}$/) }), response: { 200: z.object({ token: ApiTokenRow }) } },
    handler: (req, { auth }) => ({ token: revokeToken(auth.db, req.params.id) }),
  }),
];
