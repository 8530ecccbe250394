"""Alert e-mail in: an IMAP source (IDLE) and an SMTP receiver, with rules and spoof checks.

    message.py         real-world mail reduced to subject, addresses, headers and text
    rules.py           match a mail, pick level, title and key
    authentication.py  allow-list, Authentication-Results, DKIM: is the mail really from its sender?
    source.py          what both sources share: decide, then submit or reject
    imap.py            `type: imap`: folders watched with IDLE, positions kept across restarts
    positions.py       where each folder was left off
    smtp.py            `type: smtp`: aiosmtpd on the service's event loop
"""

from lamplighter.sources.mail.imap import ImapSource
from lamplighter.sources.mail.smtp import SmtpSource

__all__ = ["ImapSource", "SmtpSource"]
