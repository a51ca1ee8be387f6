"""The lines a person reads: what they said and what the assistant answered."""
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False, soft_wrap=True)


def print_user(text: str) -> None:
    console.print(f"[bold yellow]USER:[/bold yellow] {escape(text)}")


def print_assistant(text: str) -> None:
    console.print(f"[bold cyan]ASSISTANT:[/bold cyan] {escape(text)}")
