/**
 * Bounces, delay warnings and success reports: whether the sender of an
 * envelope is told (policy.ts), and the delivery status notification
 * that tells them (dsn.ts).
 */
export {
  buildBounce, readOriginal, RETURN_FULL_MAX, returnsWholeMessage, splitOriginal,
  type BounceInput, type BounceRecipient, type OriginalMessage, type ReportAction,
} from './dsn.ts';
export { dsnAllows, shouldBounce, shouldReportSuccess, shouldWarn, whyNoNotice, type NoticeKind } from './policy.ts';
export { diagnosticCode, EXPIRED_STATUS, statusOf } from './status.ts';
