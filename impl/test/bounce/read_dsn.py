"""Reads a bounce with Python's email package and prints what it found, as JSON.

Usage: python3 read_dsn.py FILE. The tests compare the result with what the
bounce was built from: an independent MIME parser agreeing is the point.
"""
import base64
import json
import re
import sys
from email.parser import BytesParser
from email import policy


def unfold(value):
    return re.sub(r'\r?\n(?=[ \t])', '', str(value))


def fields(message):
    return [[k, unfold(v)] for k, v in message.items()]


def part_info(part):
    info = {
        'type': part.get_content_type(),
        'cte': part.get('Content-Transfer-Encoding'),
        'charset': part.get_content_charset(),
        'description': part.get('Content-Description'),
        'defects': [type(d).__name__ for d in part.defects],
    }
    if info['type'] == 'message/delivery-status':
        info['blocks'] = [fields(block) for block in part.get_payload()]
    elif info['type'] == 'message/rfc822':
        inner = part.get_payload(0)
        info['inner'] = {'headers': fields(inner), 'body_b64': base64.b64encode(inner.get_payload(decode=True)).decode()}
    else:
        data = part.get_payload(decode=True)
        info['payload_b64'] = base64.b64encode(data).decode()
        if info['type'] == 'text/plain':
            info['text'] = data.decode(info['charset'] or 'ascii')
    return info


with open(sys.argv[1], 'rb') as f:
    message = BytesParser(policy=policy.compat32).parse(f)

print(json.dumps({
    'content_type': message.get_content_type(),
    'report_type': message.get_param('report-type'),
    'headers': fields(message),
    'defects': [type(d).__name__ for d in message.defects],
    'parts': [part_info(p) for p in message.get_payload()],
}))
