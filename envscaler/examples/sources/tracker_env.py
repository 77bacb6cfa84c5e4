from typing import Dict, List, Literal, Optional, TypedDict

Priority = Literal["low", "medium", "high", "urgent"]
Status = Literal["open", "in_progress", "in_review", "done"]


class UserInfo(TypedDict):
    """A team member."""

    user_id: str
    name: str
    projects: List[str]


class CommentInfo(TypedDict):
    author_id: str
    text: str


class TicketInfo(TypedDict):
    """A unit of work in a project."""

    ticket_id: str
    project: str
    title: str
    priority: str
    status: str
    assignee_id: Optional[str]
    labels: List[str]
    comments: List[CommentInfo]


class IssueTracker:
    TRANSITIONS = {"open": ["in_progress"], "in_progress": ["in_review", "open"], "in_review": ["done", "in_progress"],
                   "done": []}

    def __init__(self, init_config: Optional[dict] = None):
        self.users: Dict[str, UserInfo] = {}
        self.tickets: Dict[str, TicketInfo] = {}
        self.projects: Dict[str, str] = {}  # key -> name

    def find_user(self, name: str) -> dict:
        """Find team members by name.

        Args:
            name: Case-insensitive part of the name.

        Returns:
            dict: {"success": True, "data": List[UserInfo]}
        """
        return {"success": True, "data": [u for u in self.users.values() if name.lower() in u["name"].lower()]}

    def list_tickets(self, project: str, status: Optional[Status] = None, assignee_id: Optional[str] = None) -> dict:
        """List a project's tickets, optionally filtered by status or assignee.

        Args:
            project: Project key, such as "WEB".
            status: One of open, in_progress, in_review, done.
            assignee_id: Only tickets assigned to this user.

        Returns:
            dict: {"success": True, "data": List[TicketInfo]} or {"success": False, "error": str}
        """
        if project not in self.projects:
            return {"success": False, "error": f"Project {project} not found"}
        found = [t for t in self.tickets.values() if t["project"] == project
                 and (status is None or t["status"] == status)
                 and (assignee_id is None or t["assignee_id"] == assignee_id)]
        return {"success": True, "data": found}

    def get_ticket(self, ticket_id: str) -> dict:
        """Get one ticket with its comments.

        Args:
            ticket_id: Such as "WEB-12".

        Returns:
            dict: {"success": True, "data": TicketInfo} or {"success": False, "error": str}
        """
        if ticket_id not in self.tickets:
            return {"success": False, "error": f"Ticket {ticket_id} not found"}
        return {"success": True, "data": self.tickets[ticket_id]}

    def create_ticket(self, project: str, title: str, priority: Priority = "medium",
                      labels: Optional[List[str]] = None) -> dict:
        """Open a new ticket in a project.

        Args:
            project: Project key.
            title: A short summary, 5 to 120 characters.
            priority: low, medium, high or urgent.
            labels: Free-form tags.

        Returns:
            dict: {"success": True, "message": str, "data": {"ticket_id": str}} or {"success": False, "error": str}
        """
        if project not in self.projects:
            return {"success": False, "error": f"Project {project} not found"}
        if not 5 <= len(title.strip()) <= 120:
            return {"success": False, "error": "The title must have 5 to 120 characters"}
        if priority not in ("low", "medium", "high", "urgent"):
            return {"success": False, "error": f"Unknown priority {priority}"}
        number = 1 + max([int(t.split("-")[1]) for t in self.tickets if t.startswith(project + "-")] or [0])
        ticket_id = f"{project}-{number}"
        self.tickets[ticket_id] = {"ticket_id": ticket_id, "project": project, "title": title.strip(),
                                   "priority": priority, "status": "open", "assignee_id": None,
                                   "labels": list(labels or []), "comments": []}
        return {"success": True, "message": f"Created {ticket_id}", "data": {"ticket_id": ticket_id}}

    def assign_ticket(self, ticket_id: str, user_id: str) -> dict:
        """Assign a ticket to a member of its project.

        Args:
            ticket_id: The ticket.
            user_id: A member of the ticket's project.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        ticket, user = self.tickets.get(ticket_id), self.users.get(user_id)
        if ticket is None or user is None:
            return {"success": False, "error": "Ticket and user must both exist"}
        if ticket["project"] not in user["projects"]:
            return {"success": False, "error": f"{user['name']} is not a member of {ticket['project']}"}
        ticket["assignee_id"] = user_id
        return {"success": True, "message": f"{ticket_id} assigned to {user['name']}"}

    def update_status(self, ticket_id: str, status: Status) -> dict:
        """Move a ticket along its workflow: open -> in_progress -> in_review -> done.

        Args:
            ticket_id: The ticket.
            status: The next status; in_progress and in_review may also step back.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}

        Constraints:
            - A ticket must be assigned before it leaves "open".
        """
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return {"success": False, "error": f"Ticket {ticket_id} not found"}
        if status not in self.TRANSITIONS.get(ticket["status"], []):
            return {"success": False, "error": f"Cannot move {ticket_id} from {ticket['status']} to {status}"}
        if ticket["assignee_id"] is None:
            return {"success": False, "error": f"{ticket_id} must be assigned first"}
        ticket["status"] = status
        return {"success": True, "message": f"{ticket_id} is now {status}"}

    def set_priority(self, ticket_id: str, priority: Priority) -> dict:
        """Change a ticket's priority.

        Args:
            ticket_id: The ticket.
            priority: low, medium, high or urgent.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return {"success": False, "error": f"Ticket {ticket_id} not found"}
        if priority not in ("low", "medium", "high", "urgent"):
            return {"success": False, "error": f"Unknown priority {priority}"}
        ticket["priority"] = priority
        return {"success": True, "message": f"{ticket_id} priority is now {priority}"}

    def add_comment(self, ticket_id: str, author_id: str, text: str) -> dict:
        """Comment on a ticket.

        Args:
            ticket_id: The ticket.
            author_id: The commenting user.
            text: The comment.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        ticket = self.tickets.get(ticket_id)
        if ticket is None or author_id not in self.users:
            return {"success": False, "error": "Ticket and author must both exist"}
        if not text.strip():
            return {"success": False, "error": "A comment cannot be empty"}
        ticket["comments"].append({"author_id": author_id, "text": text})
        return {"success": True, "message": f"Comment added to {ticket_id}"}

    def add_label(self, ticket_id: str, label: str) -> dict:
        """Tag a ticket with a label (labels are lower-case and unique per ticket).

        Args:
            ticket_id: The ticket.
            label: The label.

        Returns:
            dict: {"success": True, "message": str} or {"success": False, "error": str}
        """
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return {"success": False, "error": f"Ticket {ticket_id} not found"}
        label = label.strip().lower()
        if not label or label in ticket["labels"]:
            return {"success": False, "error": f"Label {label!r} is empty or already set"}
        ticket["labels"].append(label)
        return {"success": True, "message": f"Labelled {ticket_id} {label}"}
