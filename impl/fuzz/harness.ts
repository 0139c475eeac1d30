/**
 * Runs a synchronous fuzzer in a worker thread, watched from the main
 * thread: a parser caught in an endless loop cannot be stopped from the
 * inside, but a worker that has not reported a case for WATCHDOG_MS can
 * be named (its case number) and terminated.
 *
 *     await fuzzMain(import.meta.url, 'config', (n) => problemsOfCase(n));
 *
 * Options: --seed N, --seconds N (default 60), --cases N, --case N (one case, verbose).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';

const WATCHDOG_MS = 10_000;

export interface FuzzOptions {
  seed: number;
  seconds: number;
  cases: number;
  only: number | undefined;
}

export function fuzzOptions(): FuzzOptions {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: String(Date.now() % 1_000_000) },
      seconds: { type: 'string', default: '60' },
      cases: { type: 'string', default: '100000000' },
      case: { type: 'string' },
    },
    strict: false,
  });
  return {
    seed: Number(values.seed),
    seconds: Number(values.seconds),
    cases: Number(values.cases),
    only: values.case === undefined ? undefined : Number(values.case),
  };
}

type Message = { kind: 'start'; n: number } | { kind: 'problems'; n: number; problems: string[] } | { kind: 'done'; ran: number };

/**
 * In the main thread: starts the worker and watches it. In the worker:
 * runs the cases, reporting each before it starts, so that a hang names its case.
 */
export async function fuzzMain(
  url: string, name: string, runCase: (seed: number, n: number) => string[] | Promise<string[]>, cleanup?: () => void,
): Promise<void> {
  if (!isMainThread) {
    const o = workerData as FuzzOptions;
    const post = (m: Message) => parentPort!.postMessage(m);
    const deadline = Date.now() + o.seconds * 1000;
    let ran = 0;
    const first = o.only ?? 0;
    const last = o.only ?? o.cases - 1;
    for (let n = first; n <= last && Date.now() < deadline; n++) {
      post({ kind: 'start', n });
      let problems: string[];
      try {
        problems = await runCase(o.seed, n);
      } catch (err) {
        problems = [`the fuzzer itself threw: ${err instanceof Error ? err.stack : String(err)}`];
      }
      ran++;
      if (problems.length > 0) post({ kind: 'problems', n, problems });
    }
    cleanup?.(); // here, not at exit: a terminated worker runs no exit handlers
    post({ kind: 'done', ran });
    return;
  }
  const options = fuzzOptions();
  // Node 20 does not give a worker the main thread's --import: the worker registers tsx itself, then loads the fuzzer.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: options, argv: process.argv.slice(2) });
  let current = -1;
  let lastStart = Date.now();
  let failed = 0;
  let ran = 0;
  const done = new Promise<void>((resolve) => {
    worker.on('message', (m: Message) => {
      if (m.kind === 'start') {
        current = m.n;
        lastStart = Date.now();
      } else if (m.kind === 'problems') {
        failed++;
        console.log(`case ${m.n} (seed ${options.seed}):\n  ${m.problems.join('\n  ')}`);
      } else {
        ran = m.ran;
        resolve();
      }
    });
    worker.on('error', (err) => {
      failed++;
      console.log(`case ${current} (seed ${options.seed}): the worker died: ${err.stack ?? err}`);
      resolve();
    });
    worker.on('exit', () => resolve());
  });
  const watchdog = setInterval(() => {
    if (Date.now() - lastStart > WATCHDOG_MS) {
      failed++;
      console.log(`case ${current} (seed ${options.seed}): no answer in ${WATCHDOG_MS / 1000} s: a hang`);
      ran = current;
      void worker.terminate();
    }
  }, 1000);
  await done;
  clearInterval(watchdog);
  await worker.terminate();
  console.log(`${name} fuzz: seed ${options.seed}, ${ran} cases, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
