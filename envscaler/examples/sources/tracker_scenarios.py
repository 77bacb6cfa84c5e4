META = {
    "env_id": "env_6",
    "env_class_name": "IssueTracker",
    "environment_summary": "Software team issue tracker",
    "environment_introduction": (
        "This environment is the issue tracker of a software team with a web and a mobile project. It holds "
        "team members, their projects and the tickets of each project with priority, status, assignee, "
        "labels and comments. Team leads use it to triage, assign and move work through its workflow."
    ),
    "constraints_rules": [
        "Tickets move open -> in_progress -> in_review -> done; in_progress and in_review can step back.",
        "A ticket must be assigned before it leaves open, and only to a member of its project.",
        "Priorities are low, medium, high or urgent; labels are lower-case and unique per ticket.",
    ],
}

BASE = {
    "projects": {"WEB": "Customer web app", "MOB": "Mobile app"},
    "users": {
        "U1": {"user_id": "U1", "name": "Alice Moreau", "projects": ["WEB", "MOB"]},
        "U2": {"user_id": "U2", "name": "Bilal Khan", "projects": ["WEB"]},
        "U3": {"user_id": "U3", "name": "Carmen Diaz", "projects": ["MOB"]},
    },
    "tickets": {
        "WEB-1": {"ticket_id": "WEB-1", "project": "WEB", "title": "Checkout button misaligned on Safari",
                  "priority": "low", "status": "open", "assignee_id": None, "labels": ["ui"], "comments": []},
        "WEB-2": {"ticket_id": "WEB-2", "project": "WEB", "title": "Password reset e-mail never arrives",
                  "priority": "high", "status": "in_progress", "assignee_id": "U2", "labels": ["auth"],
                  "comments": [{"author_id": "U2", "text": "Looks like the SMTP relay rejects our sender."}]},
        "MOB-1": {"ticket_id": "MOB-1", "project": "MOB", "title": "App crashes when rotating on the map screen",
                  "priority": "medium", "status": "open", "assignee_id": None, "labels": [], "comments": []},
    },
}

SCENARIOS = [
    {
        "task_id": "0718-092010",
        "task": (
            "The mobile app crash when rotating on the map screen is hurting our ratings. Make it urgent, give "
            "it to Carmen Diaz, and tag it with the label 'crash'. Carmen says she has started on it, so move "
            "it into progress as well."
        ),
        "checks": [
            ("Is MOB-1 urgent and assigned to Carmen (U3)?", '''
def check_func(final_state):
    t = final_state["tickets"]["MOB-1"]
    return t["priority"] == "urgent" and t["assignee_id"] == "U3"
'''),
            ("Is MOB-1 labelled 'crash' and in progress?", '''
def check_func(final_state):
    t = final_state["tickets"]["MOB-1"]
    return "crash" in t["labels"] and t["status"] == "in_progress"
'''),
        ],
        "solution": [
            ("list_tickets", {"project": "MOB"}),
            ("set_priority", {"ticket_id": "MOB-1", "priority": "urgent"}),
            ("find_user", {"name": "Carmen"}),
            ("assign_ticket", {"ticket_id": "MOB-1", "user_id": "U3"}),
            ("add_label", {"ticket_id": "MOB-1", "label": "crash"}),
            ("update_status", {"ticket_id": "MOB-1", "status": "in_progress"}),
        ],
    },
    {
        "task_id": "0718-104433",
        "task": (
            "Bilal Khan fixed the password reset e-mail problem in the web app. Send his ticket to review, and "
            "add a comment from him saying 'Switched to the authenticated SMTP relay; ready for review.' Then "
            "assign the review to Alice Moreau."
        ),
        "checks": [
            ("Is WEB-2 in review and assigned to Alice (U1)?", '''
def check_func(final_state):
    t = final_state["tickets"]["WEB-2"]
    return t["status"] == "in_review" and t["assignee_id"] == "U1"
'''),
            ("Has Bilal (U2) commented about the authenticated SMTP relay on WEB-2?", '''
def check_func(final_state):
    return any(c["author_id"] == "U2" and "authenticated smtp relay" in c["text"].lower()
               for c in final_state["tickets"]["WEB-2"]["comments"])
'''),
        ],
        "solution": [
            ("find_user", {"name": "Bilal"}),
            ("list_tickets", {"project": "WEB", "assignee_id": "U2"}),
            ("update_status", {"ticket_id": "WEB-2", "status": "in_review"}),
            ("add_comment", {"ticket_id": "WEB-2", "author_id": "U2",
                             "text": "Switched to the authenticated SMTP relay; ready for review."}),
            ("find_user", {"name": "Alice"}),
            ("assign_ticket", {"ticket_id": "WEB-2", "user_id": "U1"}),
        ],
    },
    {
        "task_id": "0718-143002",
        "task": (
            "Customers report that the web app's invoice PDF shows the wrong VAT rate. File a high-priority "
            "ticket in the web project titled 'Invoice PDF shows wrong VAT rate' with the label 'billing', and "
            "assign it to Bilal Khan."
        ),
        "checks": [
            ("Is there a WEB ticket titled 'Invoice PDF shows wrong VAT rate' with high priority?", '''
def check_func(final_state):
    return any(t["project"] == "WEB" and t["title"] == "Invoice PDF shows wrong VAT rate" and t["priority"] == "high"
               for t in final_state["tickets"].values())
'''),
            ("Is that ticket labelled 'billing' and assigned to Bilal (U2)?", '''
def check_func(final_state):
    return any(t["title"] == "Invoice PDF shows wrong VAT rate" and "billing" in t["labels"]
               and t["assignee_id"] == "U2" for t in final_state["tickets"].values())
'''),
        ],
        "solution": [
            ("create_ticket", {"project": "WEB", "title": "Invoice PDF shows wrong VAT rate", "priority": "high",
                               "labels": ["billing"]}),
            ("find_user", {"name": "Bilal Khan"}),
            ("assign_ticket", {"ticket_id": "WEB-3", "user_id": "U2"}),
        ],
    },
]
