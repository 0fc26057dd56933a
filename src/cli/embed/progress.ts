/**
 * Progress of a collection or a job: one cli-progress bar (documents done, docs/s, ETA,
 * failed) when stdout and stderr are terminals, otherwise a log line on stderr every few
 * seconds (`SOLLOL_PROGRESS_INTERVAL`, default 5 s) and one at the end.
 * cli-progress: the most used terminal progress bar on npm, maintained, no native parts,
 * redraws in place at a capped rate and handles a total that changes while it runs.
 */
import cliProgress from 'cli-progress';

export interface ProgressFigures {
  done: number;
  failed: number;
  /** Known or estimated total; undefined while unknown. */
  total: number | undefined;
}

export class Progress {
  private readonly bar: cliProgress.SingleBar | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private figures: ProgressFigures = { done: 0, failed: 0, total: undefined };
  /** Documents already done when this run started (a resume): not counted in docs/s. */
  private baseline = 0;

  constructor(private readonly label: string, interactive = Boolean(process.stdout.isTTY && process.stderr.isTTY)) {
    if (interactive) {
      this.bar = new cliProgress.SingleBar({
        format: `${label} {bar} {percentage}% | {value}/{total} docs | {speed} docs/s | ETA {eta_formatted} | failed {failed}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(1, 0, { speed: '0', failed: 0 });
    } else {
      const seconds = Number(process.env.SOLLOL_PROGRESS_INTERVAL ?? 5);
      this.timer = setInterval(() => this.logLine(), Math.max(0.1, Number.isFinite(seconds) ? seconds : 5) * 1000);
      this.timer.unref();
      this.logLine();
    }
  }

  setBaseline(done: number): void {
    this.baseline = done;
  }

  update(figures: ProgressFigures): void {
    this.figures = figures;
    if (this.bar) {
      const total = Math.max(figures.total ?? figures.done, figures.done, 1);
      this.bar.setTotal(total);
      this.bar.update(figures.done, { speed: this.rate().toFixed(0), failed: figures.failed });
    }
  }

  rate(): number {
    const seconds = (Date.now() - this.started) / 1000;
    return seconds > 0 ? Math.max(0, this.figures.done - this.baseline) / seconds : 0;
  }

  private logLine(): void {
    const { done, failed, total } = this.figures;
    const rate = this.rate();
    const pct = total ? ` (${((100 * done) / Math.max(total, 1)).toFixed(1)}%)` : '';
    const eta = total && rate > 0 && total > done ? `, ETA ${Math.round((total - done) / rate)} s` : '';
    process.stderr.write(`sollol: ${this.label} ${fmt(done)}${total ? ` of ${fmt(total)}` : ''} documents${pct}, ${fmt(Math.round(rate))} docs/s${eta}, ${fmt(failed)} failed\n`);
  }

  stop(): void {
    if (this.bar) this.bar.stop();
    if (this.timer) {
      clearInterval(this.timer);
      this.logLine();
    }
  }
}

export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}
