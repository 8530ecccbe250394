"""The Slack app source (`type: slack`): slash commands, the channel watcher, posting to Slack.

    settings      the keys of a `type: slack` entry
    signature     is an HTTP request really from Slack (signature, age, replay)
    permissions   who may send which level, by user, user group or everyone
    commands      /911, /912 and /lamp: a command in, a reply out (HTTP and Socket Mode alike)
    replies       the text of every answer
    watcher       channel messages that match patterns become events
    socket_mode   the websocket to Slack (slack_bolt), and its health
    api           the Web API calls made with the bot token
    source        the Source that ties them together
"""

from lamplighter.sources.slack.source import SlackSource

__all__ = ["SlackSource"]
