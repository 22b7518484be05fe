/** Who is signed in (GET/POST /v1/session), as the pages need it. */
export type Role = 'admin' | 'operator' | 'school' | 'carrier' | 'auditor';
export interface User {
  name: string;
  role: Role;
  school?: string;
  carrier?: string;
}
export interface SessionAnswer {
  user: User;
  csrf: string;
}

/** The pages, and the roles whose menu shows them (the API checks the same roles again). */
export const PAGES = {
  fleet: ['admin', 'operator', 'auditor', 'school'],
  imports: ['admin', 'operator'],
  lists: ['admin', 'operator', 'auditor'],
  rules: ['admin', 'operator'],
  enrol: ['admin', 'operator'],
  stoplist: ['admin', 'operator'],
  holders: ['admin', 'operator'],
  journal: ['admin', 'operator', 'auditor', 'school'],
  reports: ['admin', 'operator', 'auditor', 'school', 'carrier'],
} as const satisfies Record<string, readonly Role[]>;
export type Page = keyof typeof PAGES;

export function mayOpen(u: User, p: Page): boolean {
  return (PAGES[p] as readonly Role[]).includes(u.role);
}

/** The first page of a role. */
export function homeOf(u: User): Page {
  return (Object.keys(PAGES) as Page[]).find((p) => mayOpen(u, p)) ?? 'reports';
}
