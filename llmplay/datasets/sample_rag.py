"""Rows of the built-in retrieval-augmented samples, written for llmplay (invented text): ``handbook``, the passages of
an invented company handbook (the document set prompts/rag-answer.yaml retrieves from), and ``handbook-qa``,
questions about it with reference answers (llmplay/datasets/samples.py describes and registers both)."""

from __future__ import annotations

# (topic, text)
HANDBOOK_ROWS: tuple[tuple[str, str], ...] = (
    (
        "office hours",
        (
            "The Larkspur Robotics office in Tamsworth is open from 7:30 to 19:00 on weekdays. Staff choose "
            "their own hours but must be available for meetings between 10:00 and 15:00."
        ),
    ),
    (
        "remote work",
        (
            "Employees may work from home up to three days a week. Working from abroad needs written approval "
            "from the People team and is limited to 20 days a year."
        ),
    ),
    (
        "annual leave",
        (
            "Full-time staff get 27 days of annual leave plus public holidays. Up to five unused days can be "
            "carried over into the first quarter of the next year."
        ),
    ),
    (
        "sick leave",
        (
            "If you are ill, tell your manager before 10:00 on the first day. A doctor's note is needed from "
            "the fourth consecutive day of sickness."
        ),
    ),
    (
        "parental leave",
        (
            "Parents receive 20 weeks of parental leave at full pay, which can be taken in up to three blocks "
            "before the child turns two."
        ),
    ),
    (
        "expenses",
        (
            "Expenses must be submitted in the Ledgerly app within 30 days, with a photo of the receipt. Claims"
            " over 250 euros need the approval of a director."
        ),
    ),
    (
        "travel",
        (
            "Train travel is preferred for trips under five hours. Flights are booked in economy class. Hotels "
            "may cost up to 140 euros a night, or 190 euros in capital cities."
        ),
    ),
    (
        "equipment",
        (
            "Each new employee receives a laptop and chooses either a second monitor or noise-cancelling "
            "headphones. Laptops are replaced every four years."
        ),
    ),
    (
        "learning",
        (
            "Every employee has a learning budget of 1,500 euros a year for courses, books and conferences, "
            "plus two study days."
        ),
    ),
    (
        "device security",
        (
            "Laptops must use full-disk encryption and lock after five minutes of inactivity. A lost or stolen "
            "device must be reported to the IT desk within one hour."
        ),
    ),
    (
        "passwords",
        (
            "Passwords must be at least 14 characters long. Two-factor authentication with the Keyfob app is "
            "required for email, code hosting and the HR system."
        ),
    ),
    (
        "onboarding",
        (
            "New starters spend their first week in the Orbit onboarding programme, which includes a robot "
            "assembly workshop and a lunch with the founders."
        ),
    ),
    (
        "reviews",
        (
            "Performance reviews take place twice a year, in March and September. Salary changes are decided in"
            " the March review and paid from April."
        ),
    ),
    (
        "pension",
        (
            "The company pays 6% of salary into the pension plan and matches an additional employee "
            "contribution of up to 3%."
        ),
    ),
    (
        "bicycles",
        (
            "Through the Pedal Forward scheme staff can lease a bicycle or e-bike worth up to 3,000 euros, paid"
            " from gross salary over 36 months."
        ),
    ),
    (
        "canteen",
        (
            "The canteen serves a free vegetarian lunch from 12:00 to 14:00. Breakfast costs 2 euros and is "
            "served until 9:30."
        ),
    ),
    (
        "lab safety",
        (
            "Anyone entering the robot test lab must wear safety glasses and closed shoes. The lab is closed to"
            " visitors on Fridays for maintenance."
        ),
    ),
    (
        "visitors",
        (
            "Visitors must be registered at reception a day in advance and accompanied at all times. They wear "
            "a yellow badge."
        ),
    ),
    (
        "reporting concerns",
        (
            "Concerns about misconduct can be reported anonymously through the SafeVoice line, which is run by "
            "an outside firm and read only by the ethics officer."
        ),
    ),
    (
        "volunteering",
        "Each employee may take two paid volunteering days a year for a registered charity of their choice.",
    ),
    (
        "notice period",
        "The notice period is one month during the six-month probation and three months afterwards.",
    ),
    (
        "parking",
        (
            "The car park has 40 spaces, 8 of them with electric chargers. Spaces are booked in the Deskly app,"
            " at most two days a week per person."
        ),
    ),
)

# (question, contexts: "" or a JSON list of passages, answer)
HANDBOOK_QA_ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "How many days of annual leave do full-time staff get?",
        "",
        "Full-time staff get 27 days of annual leave plus public holidays.",
    ),
    (
        "When is a doctor's note needed for sick leave?",
        "",
        "A doctor's note is needed from the fourth consecutive day of sickness.",
    ),
    (
        "How large is the yearly learning budget?",
        "",
        "The learning budget is 1,500 euros a year, plus two study days.",
    ),
    (
        "Within how many days must expenses be submitted?",
        "",
        "Expenses must be submitted within 30 days, with a photo of the receipt.",
    ),
    (
        "How long must a password be?",
        "",
        "Passwords must be at least 14 characters long.",
    ),
    (
        "How many days a week can employees work from home?",
        "",
        "Employees may work from home up to three days a week.",
    ),
    (
        "How much does the company pay into the pension plan?",
        "",
        "The company pays 6% of salary and matches up to 3% more.",
    ),
    (
        "When do performance reviews take place?",
        "",
        "Performance reviews take place twice a year, in March and September.",
    ),
    (
        "What must you wear in the robot test lab?",
        "",
        "You must wear safety glasses and closed shoes in the robot test lab.",
    ),
    (
        "How long is parental leave?",
        "",
        "Parental leave is 20 weeks at full pay.",
    ),
    (
        "How much may a hotel cost per night?",
        "",
        "A hotel may cost up to 140 euros a night, or 190 euros in capital cities.",
    ),
    (
        "How quickly must a lost laptop be reported?",
        "",
        "A lost laptop must be reported to the IT desk within one hour.",
    ),
    (
        "What is the notice period after probation?",
        (
            '["The notice period is one month during the six-month probation and three months afterwards.", '
            '"Performance reviews take place twice a year, in March and September."]'
        ),
        "The notice period after probation is three months.",
    ),
    (
        "How much does breakfast cost in the canteen?",
        (
            '["The canteen serves a free vegetarian lunch from 12:00 to 14:00. Breakfast costs 2 euros and is '
            'served until 9:30.", "Visitors must be registered at reception a day in advance and accompanied at'
            ' all times."]'
        ),
        "Breakfast costs 2 euros.",
    ),
    (
        "How many paid volunteering days do employees get?",
        (
            '["Each employee may take two paid volunteering days a year for a registered charity of their '
            'choice.", "Full-time staff get 27 days of annual leave plus public holidays."]'
        ),
        "Employees get two paid volunteering days a year.",
    ),
    (
        "How many car park spaces have electric chargers?",
        (
            '["The car park has 40 spaces, 8 of them with electric chargers. Spaces are booked in the Deskly '
            'app, at most two days a week per person.", "Train travel is preferred for trips under five '
            'hours."]'
        ),
        "8 of the 40 car park spaces have electric chargers.",
    ),
)
