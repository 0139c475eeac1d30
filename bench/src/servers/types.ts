/** What the runner needs from a server under test. */
export interface RunningServer {
  /** Short name used in the tables ("opensmtpd", "haraka/2w", "ours"). */
  name: string;
  /** One line on how it was started, for the report. */
  description: string;
  port: number;
  /** Root of the process tree whose CPU time is measured. */
  pid: number;
  /** Recipient that this server delivers to its maildir. */
  rcpt: string;
  /** The maildir's new/ directory, where delivered messages appear. */
  maildirNew: string;
  logFile: string;
  /** Temporary directory holding its config, spool and maildir. */
  dir: string;
  stop(): Promise<void>;
}

export interface ServerDef {
  name: string;
  start(): Promise<RunningServer>;
}
