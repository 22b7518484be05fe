/** A calendar day (YYYY-MM-DD) so many years and days before another, counted in UTC as the server counts its ranges. */
export function dayBefore(day: string, by: { years?: number; days?: number }): string {
  const d = new Date(`${day}T00:00:00Z`);
  return new Date(Date.UTC(d.getUTCFullYear() - (by.years ?? 0), d.getUTCMonth(), d.getUTCDate() - (by.days ?? 0))).toISOString().slice(0, 10);
}
