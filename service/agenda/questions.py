"""The question bank: Balance Framework prompts, kind sections and check-ins, in Rapport's words.

Every question has a stable id (``gro-07``) so a pair's history can record what was asked and
the generator can avoid asking it again for a long while. Ids are written out by hand, never
derived from list positions: adding or removing a question must not renumber the others.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Area(enum.StrEnum):
    """The four Balance Framework areas a pair should cover over time."""

    GROWTH = "growth"
    COMMUNICATION = "communication"
    PRODUCTIVITY = "productivity"
    MOTIVATION = "motivation"


class Kind(enum.StrEnum):
    """The three kinds of 1:1 a pair rotates through."""

    CORE = "core"  # performance and goals
    DEVELOPMENT = "development"  # growth, engagement, career
    REGULAR = "regular"  # execution and support: progress, roadblocks, resources


@dataclass(frozen=True)
class Question:
    """A Balance prompt with the kinds of 1:1 it suits best.

    A `private` question is one a manager may ask in person but that reads badly in an invite
    others can see or forward ("What frustrates you most ...?"): it goes to the manager's
    private prep (`Agenda.private_prompts`), never into the shared block.
    """

    id: str
    area: Area
    text: str
    kinds: frozenset[Kind]
    private: bool = False


@dataclass(frozen=True)
class CheckIn:
    """A personal opener: every 1:1 starts with the person, not the work."""

    id: str
    text: str


def _bank(area: Area, table: str) -> tuple[Question, ...]:
    """Parse ``id kinds text`` rows; kinds are letters: C core, D development, R regular, and
    P marks a question for the manager's private prep only."""
    questions = []
    for row in table.strip().splitlines():
        qid, letters, text = row.split(maxsplit=2)
        kinds = frozenset(_KIND_LETTERS[letter] for letter in letters if letter != "P")
        questions.append(Question(id=qid, area=area, text=text, kinds=kinds,
                                  private="P" in letters))
    return tuple(questions)


_KIND_LETTERS = {"C": Kind.CORE, "D": Kind.DEVELOPMENT, "R": Kind.REGULAR}

GROWTH = _bank(
    Area.GROWTH,
    """
gro-01 CD  Which skill would you most like to get better at over the next few months?
gro-02 CDR What feedback have you had lately that changed how you work?
gro-03 DR  Where would some coaching from me help you more than a ready answer?
gro-04 D   What kind of work would you like to be doing more of a year from now?
gro-05 CD  Is there a stretch assignment coming up that you would like to take on?
gro-06 DR  What did you take away from the last thing that did not go to plan?
gro-07 C   Which of your goals feels furthest out of reach, and what would bring it closer?
gro-08 D   Who in the company would you like to learn from, and can I help arrange it?
gro-09 CD  What is one area where you would like more candid feedback from me?
gro-10 CD  Which part of your role do you feel most sure of, and which least?
gro-11 CD  What would you need to show to be ready for the next level?
gro-12 D   Is there a course, book or conference worth your time this quarter?
gro-13 C   How far have you come on the development goals we agreed on?
gro-14 DR  What recent decision of yours would you make differently today?
gro-15 DR  Where are you waiting for permission when you could already decide yourself?
gro-16 D   What would you like to be known for on this team?
gro-17 CR  Which recent piece of your work would benefit from a second pair of eyes?
gro-18 D   If you could rewrite your job description, what would you add or drop?
gro-19 R   What problem could we think through together, with you keeping the lead?
gro-20 C   How would you rate your own progress on this quarter's objectives, and why?
gro-21 CD  Which of your strengths do you think we are not using enough?
gro-22 DR  What did you try for the first time recently, and how did it turn out?
""",
)

COMMUNICATION = _bank(
    Area.COMMUNICATION,
    """
com-01 CR  Did you hear anything second-hand lately that you would rather have heard from me?
com-02 CDR How well are these 1:1s working for you, and what would you change?
com-03 CR  Do you get enough context on decisions made above the team?
com-04 CD  When I give you feedback, what makes it easy or hard to act on?
com-05 R   When something is urgent, what is the best way to reach you: chat, a call, or email?
com-06 CDRP Is there something you have held back from raising with me?
com-07 C   How clear is it to you what I expect from you at the moment?
com-08 R   Do our team meetings give you the information you need, or is something missing?
com-09 CD  What is one habit of mine that makes working together harder?
com-10 CR  How would you like me to tell you when I think something is drifting off course?
com-11 R   Are there terms or acronyms on the team that still trip people up, you included?
com-12 CR  Could progress updates happen outside our 1:1 so this time goes to bigger things?
com-13 DR  Who on the team is hard for you to get through to, and what might help?
com-14 CD  How comfortable are you disagreeing with me, and what would make it easier?
com-15 CD  How often would you like to hear from me about how you are doing?
com-16 R   Which of our tools for sharing information gets in the way more than it helps?
com-17 R   When did you last feel out of the loop, and how did it happen?
com-18 R   How could the written updates you get from me be shorter and more useful?
com-19 CR  What should I be more open about regarding my own work and priorities?
com-20 D   Is your feedback to peers landing the way you intend it to?
com-21 C   Would it help to know more about how your work is discussed in leadership meetings?
com-22 CD  What would you like me to tell others about your work that I have not said yet?
""",
)

PRODUCTIVITY = _bank(
    Area.PRODUCTIVITY,
    """
pro-01 CR  What is slowing you down most right now, and how could we clear it away?
pro-02 CR  Which team process would you simplify or drop if it were up to you?
pro-03 R   Is there a decision you are waiting on that I could help unblock?
pro-04 R   Which recurring meeting gives you the least value for the time it costs?
pro-05 CR  Which tools, people or budget would change what you are able to get done?
pro-06 CD  How well does our strategy match what you see from where you sit?
pro-07 R   Where do handovers between teams cost you the most time?
pro-08 CR  Which of your priorities feel unclear or pull against each other?
pro-09 C   If we could do only one of our current projects really well, which should it be?
pro-10 R   What do you keep doing by hand that a tool or a script could do for you?
pro-11 CR  What risk do you see coming that nobody is talking about yet?
pro-12 CR  What would you change about the way we plan our work?
pro-13 R   Where does your focus time go during a typical week?
pro-14 CR  What should we stop doing as a team?
pro-15 R   Is there a dependency on another team that worries you?
pro-16 C   How could we make our goals easier to measure?
pro-17 R   Which rule or approval step protects us less than it costs us?
pro-18 CD  What part of our roadmap would you question if you were in my seat?
pro-19 DR  What would make it quicker to bring a newcomer up to speed on your work?
pro-20 R   Where are we doing the same work twice?
pro-21 C   What is the biggest obstacle between you and your objectives this quarter?
pro-22 DR  With one extra day a week, what would you fix in how we work?
pro-23 DR  Which part of how we work keeps you from doing your best work?
pro-24 CD  Which of our processes would you like to own and improve yourself?
""",
)

MOTIVATION = _bank(
    Area.MOTIVATION,
    """
mot-01 DR  Which part of your work gave you energy over the last couple of weeks?
mot-02 DRP What has been wearing you down lately?
mot-03 CDR From one to ten, how do you feel about work right now, and what would add a point?
mot-04 R   What are you looking forward to this month?
mot-05 CD  Which of your recent results deserved more recognition than it got?
mot-06 DRP What frustrates you most about how things are going?
mot-07 D   Do you feel your work makes a difference to the people it is for?
mot-08 D   What would make you keen to get started on a Monday morning?
mot-09 CR  How sustainable does your workload feel at the moment?
mot-10 D   When were you last fully absorbed in a task, and what was different about it?
mot-11 DRP Is there any part of your role you have started to dread?
mot-12 CD  How do you like to be recognised: in public, in private, or not at all?
mot-13 D   What would you like more of in your work, and what less?
mot-14 DR  How connected do you feel to the rest of the team these days?
mot-15 DP  What keeps you in this job, and has that changed recently?
mot-16 CD  Which of your goals do you truly care about, and which feel handed to you?
mot-17 CD  What would make next quarter feel like a good one for you?
mot-18 DRP Is anything outside work affecting how work feels that you would like me to know?
mot-19 D   What kind of problem do you enjoy solving most?
mot-20 CD  How much say do you have over the way you do your work, and is it enough?
mot-21 R   Which recent change at work did you welcome, and which one not?
mot-22 D   When you tell friends about your job, what do you mention first?
""",
)

CHECK_INS: tuple[CheckIn, ...] = tuple(
    CheckIn(id=qid, text=text)
    for qid, text in (
        row.split(maxsplit=1)
        for row in """
chk-01 How are you doing, honestly, this week?
chk-02 What was the best part of your weekend?
chk-03 Anything fun planned for the days ahead?
chk-04 How is your energy today compared with last time we met?
chk-05 What has been on your mind outside of work lately?
chk-06 Read, watched or listened to anything good recently?
chk-07 How is life outside work treating you?
chk-08 What made you smile since we last talked?
chk-09 Is there a milestone, big or small, we should celebrate?
chk-10 How did you recharge since our last 1:1?
chk-11 What went better than you expected this week?
chk-12 If your week so far were a weather forecast, what would it say?
chk-13 Anything new in your life you would like to share?
chk-14 Any time off coming up that you are looking forward to?
""".strip().splitlines()
    )
)

BY_AREA: dict[Area, tuple[Question, ...]] = {
    Area.GROWTH: GROWTH,
    Area.COMMUNICATION: COMMUNICATION,
    Area.PRODUCTIVITY: PRODUCTIVITY,
    Area.MOTIVATION: MOTIVATION,
}


@dataclass(frozen=True)
class KindPrompt:
    """One line of a kind's own section: a facet label ("Goals") and a question for it."""

    id: str
    facet: str
    text: str


@dataclass(frozen=True)
class KindSection:
    """What a kind of 1:1 is for: its heading, a one-line explanation, and a pool per facet."""

    kind: Kind
    heading: str
    explanation: str
    facets: tuple[tuple[KindPrompt, ...], ...]


def _facets(prefix: str, table: str) -> tuple[tuple[KindPrompt, ...], ...]:
    """Parse ``Facet | question`` rows, grouped by facet in order; ids are ``prefix-facet-nn``
    and written out by the row's place inside its facet (append new rows at the end)."""
    groups: dict[str, list[KindPrompt]] = {}
    for row in table.strip().splitlines():
        facet, text = (part.strip() for part in row.split("|", 1))
        pool = groups.setdefault(facet, [])
        pool.append(KindPrompt(id=f"{prefix}-{facet[:3].lower()}-{len(pool) + 1:02d}",
                               facet=facet, text=text))
    return tuple(tuple(pool) for pool in groups.values())


# Facts from the practice of three kinds of 1:1 (seeds/003); every sentence is our own.
KIND_SECTIONS: dict[Kind, KindSection] = {
    Kind.CORE: KindSection(
        kind=Kind.CORE,
        heading="Goals and progress",
        explanation="A Core 1:1 is about performance: the objectives you hold and how far "
                    "along they are.",
        facets=_facets("core", """
Goals | Which objective matters most this quarter, and is it still the right one?
Goals | Which of your goals would you reshape now that you know more?
Goals | What would a clear win on your main objective look like by the next review?
Goals | Is any goal of yours missing an owner, a date or a way to measure it?
Goals | Which objective has not moved lately, and should it stay on the list?
Progress | Where does each of your objectives stand, in one sentence each?
Progress | What moved forward on your goals since we last looked, and what stalled?
Progress | Which result since our last Core 1:1 are you proudest of?
Progress | How would you rate your progress so far, and what would raise that rating?
Progress | What would show your progress to someone outside the team?
"""),
    ),
    Kind.DEVELOPMENT: KindSection(
        kind=Kind.DEVELOPMENT,
        heading="Career and growth",
        explanation="A Development 1:1 is about you: where your career is heading, what keeps "
                    "you engaged, and your plan to grow.",
        facets=_facets("dev", """
Career | Where would you like your career to be in two years, and what is the next step?
Career | Which role, here or elsewhere in the company, looks interesting to you, and why?
Career | What experience is missing from your path that we could create here?
Career | Whose career do you admire, and which part of it would you like for yourself?
Career | Which kind of work would you like less of as you grow?
Growth | What is on your development plan right now, and is it still the right thing?
Growth | Which skill did you practise since we last talked about growth?
Growth | Which support would help your learning most this quarter: time, budget or a mentor?
Growth | What would you like to be able to do in six months that you cannot do today?
Growth | Which piece of feedback would you like to work on next?
"""),
    ),
    Kind.REGULAR: KindSection(
        kind=Kind.REGULAR,
        heading="Progress, roadblocks and resources",
        explanation="A Regular 1:1 is about getting things done: what moved, what is stuck, "
                    "and what you need.",
        facets=_facets("reg", """
Progress | Which piece of work went better than planned since last time, and why?
Progress | What did you finish lately that deserves a moment of credit?
Progress | Where is your work heading in the next week that I should know about?
Progress | Which piece of work is taking longer than you expected?
Roadblocks | What is in your way right now?
Roadblocks | Is anything waiting on someone else that I could help move?
Roadblocks | Which problem have you been stuck on for longer than you would like?
Roadblocks | Which risk would you like us to look at before it becomes a problem?
Resources | What do you need that you do not have yet: people, tools, time or budget?
Resources | Is there a decision or an approval I can get for you this week?
Resources | Who else should you be talking to, and can I make the introduction?
Resources | Which piece of information would make your work easier if you had it sooner?
"""),
    ),
}
