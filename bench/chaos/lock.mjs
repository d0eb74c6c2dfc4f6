// The chaos suite's write-lock holder: opens the database given as argv[2],
// takes the write lock (BEGIN IMMEDIATE, waiting up to 30 s for a writer ahead of
// it), prints "locked <ms>", holds it argv[3] ms, commits, prints "unlocked <ms>"
// and exits. No roster process can commit a write meanwhile.
import Database from "better-sqlite3";

const [dbPath, holdArg] = process.argv.slice(2);
const holdMs = Number(holdArg);
const db = new Database(dbPath, { fileMustExist: true, timeout: 30_000 });
db.exec("BEGIN IMMEDIATE");
process.stdout.write(`locked ${Date.now()}\n`);
await new Promise((resolve) => setTimeout(resolve, holdMs));
db.exec("COMMIT");
process.stdout.write(`unlocked ${Date.now()}\n`);
db.close();
