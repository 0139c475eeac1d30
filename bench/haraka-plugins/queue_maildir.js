// queue_maildir: a minimal Haraka queue plugin for the SMTP benchmark.
//
// Accepts every recipient, then writes each message to a maildir the way a
// careful local delivery agent does before it answers 250:
//   write to tmp/ -> fsync the file -> rename into new/ -> fsync new/.
// Config: config/queue_maildir.ini, `[main] path=/abs/Maildir`.
// Plain CommonJS: Haraka runs plugins in a vm sandbox with its own require,
// and injects the return-code constants (OK, DENYSOFT, ...) as globals.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

let seq = 0
const host = os.hostname().replace(/[/:]/g, '_')

exports.register = function () {
    const cfg = this.config.get('queue_maildir.ini')
    this.maildir = cfg.main.path
    if (!this.maildir) throw new Error('queue_maildir.ini: [main] path is required')
    for (const sub of ['tmp', 'new', 'cur']) fs.mkdirSync(path.join(this.maildir, sub), { recursive: true })
    this.register_hook('rcpt', 'accept_rcpt')
    this.register_hook('queue', 'deliver')
}

exports.accept_rcpt = function (next) {
    next(OK)
}

function fail(plugin, next, connection, what, err) {
    connection.logerror(plugin, `${what}: ${err.message}`)
    next(DENYSOFT, 'maildir write failed')
}

exports.deliver = function (next, connection) {
    const txn = connection.transaction
    const name = `${Math.floor(Date.now() / 1000)}.P${process.pid}Q${seq++}.${host}`
    const tmp = path.join(this.maildir, 'tmp', name)
    const dst = path.join(this.maildir, 'new', name)
    const newDir = path.join(this.maildir, 'new')

    txn.message_stream.get_data({ line_endings: '\n' }, (buf) => {
        const from = txn.mail_from
        const addr = typeof from.address === 'function' ? from.address() : (from.address ?? '')
        const head = Buffer.from(`Return-Path: <${addr}>\n`)
        fs.open(tmp, 'wx', 0o600, (err, fd) => {
            if (err) return fail(this, next, connection, 'open', err)
            fs.writev(fd, [head, buf], (err) => {
                if (err) return fs.close(fd, () => fail(this, next, connection, 'write', err))
                fs.fsync(fd, (err) => {
                    fs.close(fd, () => {
                        if (err) return fail(this, next, connection, 'fsync', err)
                        fs.rename(tmp, dst, (err) => {
                            if (err) return fail(this, next, connection, 'rename', err)
                            fs.open(newDir, 'r', (err, dfd) => {
                                if (err) return fail(this, next, connection, 'open dir', err)
                                fs.fsync(dfd, (err) => {
                                    fs.close(dfd, () => {
                                        if (err) return fail(this, next, connection, 'fsync dir', err)
                                        next(OK, `queued as ${name}`)
                                    })
                                })
                            })
                        })
                    })
                })
            })
        })
    })
}
