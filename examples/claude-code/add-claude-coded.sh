#!/bin/sh
# Registers claude-coded with Claude Code, for the project in the current directory
# (`--scope project` writes .mcp.json there, to share with the team; `--scope user`
# makes it available in every project). Everything after `--` is the server command; it
# names no directory: Claude Code starts it in the project it has open.
set -eu
claude mcp add --scope project --transport stdio claude-coded -- \
    claude-coded

# Long asks: Claude Code stops waiting for an MCP tool after MCP_TOOL_TIMEOUT ms.
#   MCP_TOOL_TIMEOUT=600000 claude
# Let the model call the tools without a permission prompt each time:
#   claude --allowedTools mcp__claude-coded__ask,mcp__claude-coded__wait,mcp__claude-coded__cancel,mcp__claude-coded__status,mcp__claude-coded__events
# The agent claude-coded starts reads this .mcp.json too; its own claude-coded stays idle
# (nesting is bounded: see "Permissions and nesting" in the README).
# Check the registration: `claude mcp list`, or `/mcp` inside a session.
