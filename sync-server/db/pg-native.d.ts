// The part of pg-native 3.9 (node-postgres' libpq binding, no bundled typings) that PgDb uses: its synchronous calls.
declare module 'pg-native' {
  interface Libpq {
    /** 0 idle, 1 active, 2 in a transaction, 3 in a failed transaction, 4 unknown. */
    transactionStatus(): number;
    /** The row count of the last command's tag (INSERT 0 5 → '5'), '' when it has none. */
    cmdTuples(): string;
    /** The diagnostic fields of the last error (sqlState, messagePrimary, constraintName, …), or null. */
    resultErrorFields(): Record<string, string> | null;
  }
  interface ClientOptions {
    types?: { getTypeParser(oid: number, format?: string): (text: string) => unknown };
    arrayMode?: boolean;
  }
  class Client {
    constructor(options?: ClientOptions);
    readonly pq: Libpq;
    connectSync(params?: string): void;
    querySync(text: string, values?: (string | null)[]): unknown[];
    prepareSync(statementName: string, text: string, nParams: number): void;
    executeSync(statementName: string, parameters: (string | null)[]): unknown[];
    end(cb?: () => void): void;
  }
  export default Client;
}
