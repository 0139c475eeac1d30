/** Logging for every process of the daemon: levels, maillog lines and trace flags. */
export { createLogger, silentLogger, syslogTime, type LogFormat, type Logger, type LoggerOptions } from './logger.ts';
export { isTraceFlag, parseTraceFlags, TRACE_FLAGS, TRACED_FLAGS, type TraceFlag, type TraceFlags } from './trace.ts';
