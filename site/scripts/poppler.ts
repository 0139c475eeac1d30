/** Reading PDFs back with poppler-utils (pdfinfo), for the PDF script and the tests. */
import { execFileSync } from 'node:child_process';

export function hasPdfinfo(): boolean {
  try {
    execFileSync('pdfinfo', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Named destinations and the page each points at, from `pdfinfo -dests`:
 *
 *     Page  Destination                 Name
 *        3 [ XYZ   56  785 null      ] "ch-preface"
 */
export function pdfDests(file: string): Map<string, number> {
  const text = execFileSync('pdfinfo', ['-dests', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const dests = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+\[.*\]\s+"(.*)"\s*$/.exec(line);
    if (m) dests.set(m[2]!, Number(m[1]));
  }
  return dests;
}

export function pdfPageCount(file: string): number {
  const text = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
  const m = /^Pages:\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`pdfinfo did not report a page count for ${file}`);
  return Number(m[1]);
}
