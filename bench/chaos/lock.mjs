// The chaos suite's write-lock holder: opens the database given as argv[2],
// takes the write lock, prints "locked <ms>", holds it argv[3] ms, commits,
// prints "unlocked <ms>" and exits. No roster process can commit a write meanwhile.
//
// SQLite: BEGIN IMMEDIATE (waiting up to 30 s for a writer ahead of it).
// PostgreSQL (a postgres:// URL): LOCK TABLE task_status IN EXCLUSIVE MODE, which
// lets reads through and stops every claim, renewal, settlement and enqueue (each
// writes task_status), as SQLite's write lock does.
const [target, holdArg] = process.argv.slice(2);
const holdMs = Number(holdArg);
const hold = () => new Promise((resolve) => setTimeout(resolve, holdMs));

if (/^postgres(ql)?:\/\//.test(target)) {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: target });
  await client.connect();
  await client.query("SET lock_timeout = '30s'");
  await client.query("BEGIN");
  await client.query("LOCK TABLE task_status IN EXCLUSIVE MODE");
  process.stdout.write(`locked ${Date.now()}\n`);
  await hold();
  await client.query("COMMIT");
  process.stdout.write(`unlocked ${Date.now()}\n`);
  await client.end();
} else {
  const { default: Database } = await import("better-sqlite3");
  const db = new Database(target, { fileMustExist: true, timeout: 30_000 });
  db.exec("BEGIN IMMEDIATE");
  process.stdout.write(`locked ${Date.now()}\n`);
  await hold();
  db.exec("COMMIT");
  process.stdout.write(`unlocked ${Date.now()}\n`);
  db.close();
}
