import pytest

from learners.questions import (about_the_user, anchor, answer_spans, clauses, cloze_questions, object_span,
                                resolve_pronoun, subject, subject_question, third_person)


def test_answer_spans_are_names_numbers_times_dates_and_quotes():
    sentence = "The Halvenmoor Observatory was built in 1911 by Cassia Drenholt; its telescope is nicknamed 'Old Wick'"
    assert [text for _, _, text in answer_spans(sentence)] == [
        "Halvenmoor Observatory", "1911", "Cassia Drenholt", "'Old Wick'"]
    assert [t for *_, t in answer_spans("Its limit was set to 180 on 3 February at 5:30 pm")] == [
        "180", "3 February", "5:30 pm"]
    assert [t for *_, t in answer_spans("The database is called kst-pg-07, and I drink a drink called a cortado")] == [
        "kst-pg-07", "a cortado"]
    # Weekdays and sentence openers are not answers; digits inside a name are not numbers.
    assert answer_spans("My son trains on Thursdays") == []


@pytest.mark.parametrize(
    "sentence, question, span",
    [
        ("My brother Teodor works as a ferry mechanic in Port Halvik.",
         "My brother Teodor works as a ferry mechanic in which place?", "Port Halvik"),
        ("The team trains on Thursdays at 5:30 pm.", "The team trains on Thursdays at what time?", "5:30 pm"),
        ("My grandmother Ysolde turns 94 on 11 October.", "My grandmother Ysolde turns what number on 11 October?", "94"),
        ("The river Sallow Ness flows 214 kilometres to the sea.", "The river Sallow Ness flows how many kilometres to the sea?",
         "214"),
        ("In hotels I prefer a room above the 10th floor.", "In hotels I prefer a room above which floor?", "10th"),
        ("The observatory was finished in 1911.", "The observatory was finished in what year?", "1911"),
        ("The festival is held every third weekend of May.", "The festival is held every third weekend of what month?",
         "May"),
        ("The board game was designed by Tomas Eberwyn.", "The board game was designed by whom?", "Tomas Eberwyn"),
        ("Its main telescope is nicknamed 'Old Wick'.", "Its main telescope is nicknamed what?", "Old Wick"),
    ],
)
def test_a_span_is_asked_for_in_place_by_its_shape(sentence, question, span):
    assert (question, span) in [(q.question, q.span) for q in cloze_questions(sentence)]


@pytest.mark.parametrize(
    "sentence, question, span",
    [
        ("The Halvenmoor Observatory was built in 1911 by Cassia Drenholt",
         "Which observatory was built in 1911 by Cassia Drenholt?", "Halvenmoor Observatory"),
        ("The river Sallow Ness flows 214 kilometres to the sea", "Which river flows 214 kilometres to the sea?",
         "Sallow Ness"),
        ("My son Elric is allergic to kiwi fruit", "Who is allergic to kiwi fruit?", "Elric"),
        ("Quorvex is a programming language created in 2009", "What is a programming language created in 2009?",
         "Quorvex"),
        ("Tomas Eberwyn designed a board game about salt", "Who designed a board game about salt?", "Tomas Eberwyn"),
    ],
)
def test_the_subject_is_asked_for_in_subject_position(sentence, question, span):
    found = subject_question(sentence)
    assert (found.question, found.span, found.clause) == (question, span, sentence)
    assert (question, span) in [(q.question, q.span) for q in cloze_questions(sentence + ".")]


def test_a_subject_question_needs_the_whole_subject_and_a_verb_after_it():
    assert subject_question("The Lumen billing service's export job was moved to 03:15") is None  # a modifier
    assert subject_question("Project Kestrel's staging database is called kst-pg-07") is None  # a possessive
    assert subject_question("After the incident Priya Takoda owns the export job") is None  # not the subject
    assert subject_question("My brother Teodor smiled") is None  # too short to ask
    # A resolved pronoun is a guess, so it is never the answer: "she" here is the dog, not Teodor.
    assert not [q for q in cloze_questions("She rides along on the boat at night.", "Teodor") if q.span == "Teodor"]


def test_the_subject_is_not_asked_for_in_place_and_pronouns_get_the_topic_back():
    assert cloze_questions("My brother Teodor smiled.") == []  # "My brother what smiled?" reads badly
    assert resolve_pronoun("His greyhound is called Pimento.", "Teodor") == "Teodor's greyhound is called Pimento."
    assert resolve_pronoun("He's moving to Quillon Bay.", "Hamish") == "Hamish is moving to Quillon Bay."
    assert resolve_pronoun("His greyhound is called Pimento.", "") == "His greyhound is called Pimento."
    assert subject("My brother Teodor works in Port Halvik. His dog is Pimento.") == "Teodor"
    assert subject("Project Kestrel's database is called kst-pg-07.") == "Project Kestrel"
    assert subject("I drink my coffee black.") == ""


def test_a_piece_that_does_not_name_the_topic_is_asked_with_it_in_front():
    asked = [q.question for q in cloze_questions("The 2023 race was won by Fenna Lowgate.", "Copperwind Festival")]
    assert "For Copperwind Festival, the 2023 race was won by whom?" in asked
    sentence = "The Marrowfield migration has a budget of 62,000 euros, and the vendor chosen is Calloway Stack."
    asked = [q.question for q in cloze_questions(sentence, "Marrowfield")]
    assert "For Marrowfield, the vendor chosen is who?" in asked
    assert anchor("The river Sallow Ness flows to the sea", "Sallow Ness") == "The river Sallow Ness flows to the sea"
    assert anchor("Quorvex's package manager is Shedkeeper", "Quorvex") == "Quorvex's package manager is Shedkeeper"
    assert anchor("I'm giving the toast", "Marguerite") == "For Marguerite, I'm giving the toast"
    assert anchor("In hotels I want a room", "Marguerite") == "For Marguerite, in hotels I want a room"
    assert anchor("has a broken left brake", "Hamish") == "has a broken left brake"  # a fragment, not a clause
    assert anchor("The current primary is Joaquim", "") == "The current primary is Joaquim"


def test_a_long_sentence_is_also_asked_about_clause_by_clause():
    sentence = "His greyhound is called Pimento, and he takes her along during his night shifts."
    assert clauses(sentence.rstrip(".")) == ["His greyhound is called Pimento", "he takes her along during his night shifts"]
    assert [q.question for q in cloze_questions(sentence, "Teodor")] == [
        "Teodor's greyhound is called what, and he takes her along during his night shifts?",
        "Teodor's greyhound is called Pimento, and he takes her along during what?",
        "Teodor's greyhound is called what?",
        "Teodor takes her along during what?",
    ]


@pytest.mark.parametrize(
    "clause, question, span",
    [
        ("I'm allergic to sesame", "I'm allergic to what?", "sesame"),
        ("On long flights I always want an aisle seat", "On long flights I always want what?", "aisle seat"),
        ("I drink my coffee as a cortado with oat milk", "I drink my coffee as a cortado with what?", "oat milk"),
        ("I dislike audiobooks", "I dislike what?", "audiobooks"),  # no preposition: the last word alone
        ("Never book meetings for me on Monday mornings", "Never book meetings for me on what?", "Monday mornings"),
        ("Source files use the .qvx extension", "Source files use what?", "qvx extension"),
    ],
)
def test_the_plain_noun_phrase_a_clause_ends_on_is_asked_for(clause, question, span):
    assert (question, span) in [(q.question, q.span) for q in cloze_questions(clause)]


def test_a_noun_after_a_name_or_number_is_not_a_phrase_of_its_own():
    assert object_span("She plays every Sunday at the Larkfield community hall") is None
    assert object_span("My reading goal this year is 37 books") is None
    clause = "The export moved after the incident"
    assert object_span(clause) == (clause.index("the incident"), len(clause), "incident")  # "after what?"


@pytest.mark.parametrize(
    "sentence, told",
    [
        ("I drink my coffee with oat milk, and my son Elric is allergic to kiwi.",
         "The user drinks their coffee with oat milk, and the user's son Elric is allergic to kiwi."),
        ("My neighbour Hamish lent me his cargo bike.", "The user's neighbour Hamish lent the user his cargo bike."),
        ("When I run I usually listen to podcasts; I'm never without them.",
         "When the user runs they usually listen to podcasts; the user is never without them."),
        ("I watch films, but I don't smoke, and I went home.",
         "The user watches films, but the user doesn't smoke, and the user went home."),
        ("I carry a bag and I have a dog.", "The user carries a bag and they have a dog."),
        ("The river flows to the sea.", "The river flows to the sea."),
    ],
)
def test_the_user_in_the_third_person_with_the_verb_agreeing(sentence, told):
    assert third_person(sentence) == told


def test_a_question_about_the_user_is_asked_again_in_the_third_person():
    sentence = "I'm allergic to sesame, and on flights I always want an aisle seat."
    asked = {q.question: q for q in cloze_questions(sentence)}
    told = about_the_user(asked["I'm allergic to what?"])
    assert (told.question, told.span, told.clause) == (
        "The user is allergic to what?", "sesame", "The user is allergic to sesame")
    twin = about_the_user(asked["On flights I always want what?"])
    assert (twin.question, twin.clause) == (
        "On flights the user always wants what?", "On flights the user always wants an aisle seat")
    assert about_the_user(cloze_questions("The river Sallow Ness flows 214 kilometres to the sea.")[0]) is None
